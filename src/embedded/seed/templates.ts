import type { Json } from '../../lib/merge-patch.js';

/*
 * Default templates the embedded core loads. They are written for the same
 * template variables as the Factory+ template entries, so an installation's
 * own entries can replace them without any change to the Cluster Manager.
 */

const sourceApi = 'source.toolkit.fluxcd.io/v1';
const kustomizeApi = 'kustomize.toolkit.fluxcd.io/v1';

function gitRepository(name: string, url: string): Json {
  return {
    apiVersion: sourceApi,
    kind: 'GitRepository',
    metadata: { name, namespace: '{{ namespace }}' },
    spec: { interval: '3m', url, ref: { branch: 'main' }, secretRef: { name: 'flux-secrets' } },
  };
}

function kustomization(name: string, path: string, source: string, interval: string): Json {
  return {
    apiVersion: kustomizeApi,
    kind: 'Kustomization',
    metadata: { name, namespace: '{{ namespace }}' },
    spec: { interval, path, prune: true, sourceRef: { kind: 'GitRepository', name: source } },
  };
}

/** Flux template: file name in `edo/cluster/` -> manifests. Variables: helm, namespace, url.self, url.helm. */
export const fluxTemplate: Json = {
  'edge-cluster.yaml': ['{{ helm }}'],
  'flux-system.yaml': [kustomization('flux-system', './flux-system', 'helm-charts', '3h0m0s')],
  'helm-charts.yaml': [gitRepository('helm-charts', '{{ url.helm }}')],
  'self-link.yaml': [gitRepository('self-link', '{{ url.self }}'), kustomization('self-link', './', 'self-link', '3m')],
};

/** HelmRelease resource template. Variables: name, uuid, chart, source, values. */
export const helmReleaseTemplate: Json = {
  resources: [{ apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease' }],
  template: {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name: '{{name}}', labels: { 'factoryplus.app.amrc.co.uk/uuid': '{{uuid}}' } },
    spec: {
      interval: '2m0s',
      maxHistory: 1,
      chart: {
        spec: {
          chart: '{{chart}}',
          reconcileStrategy: 'Revision',
          sourceRef: { kind: 'GitRepository', name: '{{source}}' },
        },
      },
      install: { crds: 'CreateReplace' },
      upgrade: { crds: 'CreateReplace' },
      driftDetection: { mode: 'enabled' },
      values: '{{values}}',
    },
  },
};

/** Helm chart template of the edge cluster chart. Variables: name, uuid. */
export function clusterChartTemplate(opts: {
  realm: string;
  domain: string;
  directoryUrl: string;
  edgeAccountClass: string;
  edgeSyncRole: string;
  edgeMonitorRole: string;
}): Json {
  return {
    chart: 'edge-cluster',
    values: {
      cluster: { name: '{{name}}', uuid: '{{uuid}}', domain: opts.domain, directory: opts.directoryUrl },
      krb5: { realm: opts.realm },
      uuid: {
        class: { edgeAccount: opts.edgeAccountClass },
        group: { edgeSync: opts.edgeSyncRole, edgeMonitor: opts.edgeMonitorRole },
      },
    },
  };
}

/*
 * The bootstrap script (assembled by src/bootstrap/script.ts): the wrapper
 * unpacks the files, plus flux-system.yaml and self-link.yaml, into a temporary
 * directory and runs bootstrap.sh there. Both must stay POSIX sh that passes
 * 'shellcheck -s sh'; the bootstrap tests check that and run the script.
 */
const bootstrapDriver = `#!/bin/sh
# Joins this Kubernetes cluster to Factory+ as the edge cluster {{name}}.
#
# Every step applies desired state rather than creating objects, so after a
# failure the script can simply be run again. Pass --yes (or set
# BOOTSTRAP_YES=1) to skip the confirmation prompt.
set -eu

CLUSTER='{{name}}'
NS='{{namespace}}'

say () {
    printf '%s\\n' "$*"
}

fail () {
    printf 'bootstrap: %s\\n' "$*" >&2
    exit 1
}

# Server-side apply creates or updates, and takes over fields an earlier run
# (or Flux) set, so repeating a step never trips over existing objects.
kapply () {
    kubectl apply --server-side --force-conflicts --field-manager=fplus-bootstrap "$@"
}

# exists NAMESPACE KIND/NAME
exists () {
    kubectl get -n "$1" "$2" -o name >/dev/null 2>&1
}

# serves CRD VERSION: does the installed CRD serve that API version?
serves () {
    kubectl get "crd/$1" -o jsonpath='{.spec.versions[*].name}' 2>/dev/null \\
        | tr ' ' '\\n' | grep -qx "$2"
}

# The edge-bootstrap account is bound to cluster-admin: it must not outlive
# the join, however the join ends.
remove_join_pod () {
    kubectl delete -f edge-bootstrap.yaml --ignore-not-found --wait=false >/dev/null 2>&1 || :
}

assume_yes=\${BOOTSTRAP_YES:-0}
for arg in "$@"; do
    case $arg in
        -y|--yes) assume_yes=1 ;;
        *) fail "unknown argument '$arg' (the only option is --yes)" ;;
    esac
done

# Fetched with 'curl | sh', the script's stdin is the script itself, so
# questions go to the terminal.
if ( : </dev/tty ) 2>/dev/null; then
    tty=/dev/tty
else
    tty=
fi

command -v kubectl >/dev/null 2>&1 \\
    || fail "kubectl not found on PATH; install kubectl, set it up to administer the new cluster and run this script again."
if ! err=$(kubectl version --request-timeout=30s 2>&1 >/dev/null); then
    fail "cannot reach the Kubernetes cluster (kubectl context: $(kubectl config current-context 2>/dev/null || echo none)); check KUBECONFIG and run this script again. kubectl said: $err"
fi
kubectl auth can-i '*' '*' --all-namespaces >/dev/null 2>&1 \\
    || fail "the current kubectl user is not a cluster administrator; bootstrapping needs cluster-admin."

say "Bootstrapping Factory+ edge cluster $CLUSTER (namespace $NS) on these nodes:"
kubectl get nodes
if [ "$assume_yes" != 1 ]; then
    [ -n "$tty" ] || fail "no terminal to confirm on; pass --yes or set BOOTSTRAP_YES=1 to run unattended."
    printf 'Press Return to continue or Ctrl-C to abort: ' >"$tty"
    read -r _ <"$tty"
fi

install_flux=yes
if exists flux-system deployment/helm-controller; then
    install_flux=no
    say "Flux is already installed; checking it is compatible..."
    if ! { serves helmreleases.helm.toolkit.fluxcd.io v2 \\
        && serves gitrepositories.source.toolkit.fluxcd.io v1 \\
        && serves kustomizations.kustomize.toolkit.fluxcd.io v1; }; then
        fail "the installed Flux lacks helm.toolkit.fluxcd.io/v2, source.toolkit.fluxcd.io/v1 or kustomize.toolkit.fluxcd.io/v1; upgrade Flux (2.3 or later) and run this script again."
    fi
fi

say "Ensuring namespace $NS exists..."
kubectl create namespace "$NS" --dry-run=client -o yaml | kapply -f -

if exists "$NS" secret/flux-secrets; then
    say "The cluster has already joined Factory+."
else
    say "Joining the cluster to Factory+; log in as a Factory+ administrator when asked..."
    trap remove_join_pod EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # A finished pod cannot be started again: begin with a fresh one.
    kubectl delete -n "$NS" pod/edge-bootstrap --ignore-not-found >/dev/null
    kapply -f edge-bootstrap.yaml
    kubectl wait -n "$NS" pod/edge-bootstrap --for=condition=Ready --timeout=5m \\
        || fail "the edge-bootstrap pod did not start within 5 minutes; see 'kubectl -n $NS describe pod edge-bootstrap'."
    # Whether the join worked is judged by the secret below, not by attach.
    if [ -n "$tty" ]; then
        kubectl attach -ti -n "$NS" -c bootstrap edge-bootstrap <"$tty" || :
    else
        kubectl attach -i -n "$NS" -c bootstrap edge-bootstrap || :
    fi
    remove_join_pod
    trap - EXIT INT TERM
    exists "$NS" secret/flux-secrets \\
        || fail "the cluster did not join Factory+ (wrong credentials?); run this script again to retry."
fi

if [ "$install_flux" = yes ]; then
    say "Installing Flux..."
    kapply -f flux-system.yaml
    kubectl wait --for=condition=Established --timeout=2m \\
        crd/gitrepositories.source.toolkit.fluxcd.io crd/kustomizations.kustomize.toolkit.fluxcd.io \\
        || fail "Flux's resource types did not appear; is flux-system.yaml the output of 'flux install --export'?"
fi

say "Linking the cluster to its Factory+ repository..."
kapply -f self-link.yaml
say "Waiting for the first sync; this can take several minutes..."
kubectl wait -n "$NS" kustomization/self-link --for=condition=Ready --timeout=15m \\
    || fail "kustomization/self-link is not Ready yet; see 'kubectl -n $NS describe kustomization self-link', or run this script again to keep waiting."

say "Done: edge cluster $CLUSTER is bootstrapped."
`;

const bootstrapPod = `# Resources of the one-off pod that joins the cluster to Factory+: it logs in
# to Kerberos as an administrator, creates the cluster's accounts and leaves
# the secret flux-secrets behind. bootstrap.sh deletes all of this afterwards.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: krb5-conf
  namespace: "{{namespace}}"
data:
  krb5.conf: |
    [libdefaults]
        default_realm = {{realm}}
        dns_canonicalize_hostname = false
        udp_preference_limit = 1
        spake_preauth_groups = edwards25519

    [domain_realm]
        {{domain}} = {{realm}}

    [realms]
        {{realm}} = {
            kdc = kdc.{{domain}}
            admin_server = kadmin.{{domain}}
            disable_encrypted_timestamp = true
        }
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: edge-bootstrap
  namespace: "{{namespace}}"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: acs-edge-bootstrap
  namespace: "{{namespace}}"
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: edge-bootstrap
    namespace: "{{namespace}}"
---
apiVersion: v1
kind: Pod
metadata:
  name: edge-bootstrap
  namespace: "{{namespace}}"
spec:
  serviceAccountName: edge-bootstrap
  restartPolicy: Never
  volumes:
    - name: krb5-conf
      configMap:
        name: krb5-conf
  containers:
    - name: bootstrap
      image: "{{krbkeys}}"
      imagePullPolicy: Always
      command: ["/usr/bin/python3", "-m", "amrc.factoryplus.krbkeys.cluster"]
      stdin: true
      tty: true
      env:
        - name: CLUSTER_NAME
          value: "{{name}}"
        - name: REALM
          value: "{{realm}}"
        - name: NAMESPACE
          value: "{{namespace}}"
      volumeMounts:
        - name: krb5-conf
          mountPath: /etc/krb5.conf
          subPath: krb5.conf
`;

const bootstrapWrapper = `#!/bin/sh
# Factory+ bootstrap for the edge cluster {{name}}.
#
# Run it where kubectl can administer the new cluster, for example
#     curl -fsS 'BOOTSTRAP-URL' | sh
# Add --yes ('sh -s -- --yes') or set BOOTSTRAP_YES=1 to skip the
# confirmation prompt. Running it again after a failure is safe.
set -eu

wd=$(mktemp -d "\${TMPDIR:-/tmp}/fplus-bootstrap.XXXXXXXX")
trap 'cd / && rm -rf "$wd"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$wd"

{{files}}

sh ./bootstrap.sh "$@"
`;

/** Bootstrap script template. Variables: name, namespace, domain, realm, krbkeys, files. */
export const bootstrapTemplate: Json = {
  files: { 'bootstrap.sh': bootstrapDriver, 'edge-bootstrap.yaml': bootstrapPod },
  wrapper: bootstrapWrapper,
};

/**
 * The shared Helm repo's `flux-system/flux-system.yaml`. A real installation
 * keeps the output of `flux install --export` there; the embedded core ships a
 * placeholder that applies cleanly and says so.
 */
export const fluxSystemPlaceholder = `# Flux installation manifests for edge clusters.
#
# In a Factory+ installation this file holds the output of
#     flux install --export
# for the Flux version the Cluster Manager expects, and edge clusters apply it
# during bootstrap and keep it updated through the flux-system Kustomization.
# The embedded Factory+ core ships this placeholder instead: replace it by
# pushing the real manifests to flux-system/flux-system.yaml in this repo.
---
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
  labels:
    app.kubernetes.io/part-of: flux
`;
