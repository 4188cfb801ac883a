// Decides one question from a set of access control entries: may this principal do this operation
// on this resource? Deny wins: an entry denying it (for the principal or `*`, whose pattern names
// the resource, for the operation or `all`) refuses it whatever allows it; otherwise an entry
// allowing it (or an operation that implies it, as read implies describe) lets it through; nothing
// matching refuses it. No cache here (authorizer.ts keeps one per principal).

import {
  type AclEntry,
  type AclOperation,
  type AclResource,
  type AclResourceType,
  ANY_PRINCIPAL,
  allowCovers,
  denyCovers,
  patternMatches,
} from './acl.js';

export type AclDecision =
  | { readonly allowed: true; readonly entry: AclEntry }
  | { readonly allowed: false; readonly entry: AclEntry | null };

export class AclMatcher {
  /** Entries by resource type: a question looks only at the entries of its type. */
  private readonly byType = new Map<AclResourceType, AclEntry[]>();
  readonly size: number;

  constructor(entries: readonly AclEntry[]) {
    for (const entry of entries) {
      const list = this.byType.get(entry.resourceType);
      if (list === undefined) this.byType.set(entry.resourceType, [entry]);
      else list.push(entry);
    }
    this.size = entries.length;
  }

  decide(principal: string, operation: AclOperation, resource: AclResource): AclDecision {
    let allow: AclEntry | null = null;
    for (const entry of this.byType.get(resource.type) ?? []) {
      if (entry.principal !== principal && entry.principal !== ANY_PRINCIPAL) continue;
      if (!patternMatches(entry, resource)) continue;
      if (entry.permission === 'deny') {
        if (denyCovers(entry.operation, operation)) return { allowed: false, entry };
      } else if (allow === null && allowCovers(entry.operation, operation)) allow = entry;
    }
    return allow !== null ? { allowed: true, entry: allow } : { allowed: false, entry: null };
  }

  /**
   * Whether some entry allows `operation` on some resource of `type` to the principal (a producer
   * allowed to write to any topic may ask for a producer id, as in Kafka). Deny entries on
   * particular resources do not refuse this: they apply when the resource is used.
   */
  allowsSome(principal: string, operation: AclOperation, type: AclResourceType): boolean {
    for (const entry of this.byType.get(type) ?? [])
      if (
        (entry.principal === principal || entry.principal === ANY_PRINCIPAL) &&
        entry.permission === 'allow' &&
        allowCovers(entry.operation, operation)
      )
        return true;
    return false;
  }
}
