/**
 * Which cluster holds which name. A cluster's name becomes its Sparkplug
 * group, its accounts' Kerberos names, its repo path and Kubernetes names,
 * so two clusters whose names differ only in case or punctuation would
 * share them. The first cluster to claim a name holds it until it is
 * removed; another that asks for it is refused before anything is made.
 * Claims are taken in the one process that commissions, so two entries
 * created at the same moment cannot both win.
 */
import { k8sName } from '../repo/yaml.js';

export class ClusterNames {
  private readonly holders = new Map<string, string>();
  private readonly keys = new Map<string, string>();

  /** Names that make the same Kubernetes name are the same name. */
  static key(name: string): string {
    return k8sName(name);
  }

  /**
   * Claims `name` for `cluster` (giving up the one it held before, if
   * another); answers the holder when another cluster has it.
   */
  claim(cluster: string, name: string): string | undefined {
    const key = ClusterNames.key(name);
    const holder = this.holders.get(key);
    if (holder !== undefined && holder !== cluster) return holder;
    const old = this.keys.get(cluster);
    if (old !== undefined && old !== key) this.holders.delete(old);
    this.holders.set(key, cluster);
    this.keys.set(cluster, key);
    return undefined;
  }

  /** Gives up the cluster's name; answers it, if it held one. */
  release(cluster: string): string | undefined {
    const key = this.keys.get(cluster);
    if (key === undefined) return undefined;
    this.keys.delete(cluster);
    if (this.holders.get(key) === cluster) this.holders.delete(key);
    return key;
  }
}
