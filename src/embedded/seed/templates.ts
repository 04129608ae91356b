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
      chart: { spec: { chart: '{{chart}}', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: '{{source}}' } } },
      install: { crds: 'CreateReplace' },
      upgrade: { crds: 'CreateReplace' },
      driftDetection: { mode: 'enabled' },
      values: '{{values}}',
    },
  },
};

/** Helm chart template of the edge cluster chart. Variables: name, uuid. */
export function clusterChartTemplate(opts: { realm: string; domain: string; directoryUrl: string; edgeAccountClass: string;
  edgeSyncRole: string; edgeMonitorRole: string }): Json {
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

const bootstrapDriver = `#!/bin/sh
# Joins this Kubernetes cluster to Factory+ as the edge cluster {{name}}.
# Every step can be repeated: running the script again after a failure
# picks up where the last run stopped.
set -eu

NS="{{namespace}}"

fail () {
    echo "bootstrap: $*" >&2
    exit 1
}

exists () {
    kubectl get -n "$1" "$2" >/dev/null 2>&1
}

command -v kubectl >/dev/null 2>&1 \\
    || fail "kubectl was not found on PATH; install it and run this script again."
kubectl get nodes >/dev/null 2>&1 \\
    || fail "kubectl cannot reach a cluster; check KUBECONFIG and your access, then run this script again."

echo "Bootstrapping edge cluster {{name}} (namespace $NS) on these nodes:"
kubectl get nodes
if [ -z "\${BOOTSTRAP_ASSUME_YES:-}" ] && [ -t 0 ]; then
    printf 'Press Return to continue or Ctrl-C to abort: '
    read -r _
fi

manage_flux=yes
if exists flux-system deployment/helm-controller; then
    manage_flux=no
    echo "Flux is already installed; it is left as it is."
fi

echo "Ensuring namespace $NS..."
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -

if exists "$NS" secret/flux-secrets; then
    echo "This cluster has already joined Factory+."
else
    echo "Joining this cluster to Factory+ (you will be asked for an administrator's credentials)..."
    kubectl delete -f edge-bootstrap.yaml --ignore-not-found >/dev/null
    kubectl apply -f edge-bootstrap.yaml
    kubectl wait -n "$NS" pod/edge-bootstrap --for=condition=Ready --timeout=300s
    kubectl attach -i -n "$NS" -c bootstrap edge-bootstrap
    kubectl delete -f edge-bootstrap.yaml --ignore-not-found >/dev/null
    exists "$NS" secret/flux-secrets \\
        || fail "joining did not complete (wrong credentials?); run this script again."
fi

if [ "$manage_flux" = yes ]; then
    echo "Installing Flux..."
    kubectl apply -f flux-system.yaml
fi

echo "Linking the cluster to its repository..."
kubectl apply -f self-link.yaml
kubectl wait -n "$NS" kustomization/self-link --for=condition=Ready --timeout=600s

echo "Edge cluster {{name}} is bootstrapped."
`;

const bootstrapPod = `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: krb5-conf
  namespace: {{namespace}}
data:
  krb5.conf: |
    [libdefaults]
        default_realm = {{realm}}
        dns_canonicalize_hostname = false
        rdns = false
    [realms]
        {{realm}} = {
            kdc = kdc.{{domain}}
            admin_server = kadmin.{{domain}}
        }
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: edge-bootstrap
  namespace: {{namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: edge-bootstrap
  namespace: {{namespace}}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: edge-bootstrap
    namespace: {{namespace}}
---
apiVersion: v1
kind: Pod
metadata:
  name: edge-bootstrap
  namespace: {{namespace}}
spec:
  serviceAccountName: edge-bootstrap
  restartPolicy: Never
  volumes:
    - name: krb5-conf
      configMap:
        name: krb5-conf
  containers:
    - name: bootstrap
      image: {{krbkeys}}
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
# Factory+ bootstrap for edge cluster {{name}}: unpacks its files into a
# temporary directory and runs bootstrap.sh there.
set -eu
wd=$(mktemp -d)
trap 'rm -rf "$wd"' EXIT
cd "$wd"
{{files}}
sh ./bootstrap.sh
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
