/**
 * What one owner's jobs may see of another's, as every store applies it. A job's `uniqueKey` and
 * its `dependsOn` parents live in its owner's scope: jobs launched by the library without an owner
 * share one scope of their own, and a user's launch never meets another user's job through them.
 */
import { notFound } from "../core/errors.js";

/**
 * The scope a `uniqueKey` is unique in, as SQL stores it: the owner, or "" for jobs without one
 * (user names are never empty). Matches the expression of the `jobs_unique` index.
 */
export const UNIQUE_SCOPE_SQL = "coalesce(owner, '')";

/**
 * A parent a job may depend on: one that exists and, when the job has an owner, has the same
 * owner. Anything else answers as an unknown handle does (FERRY_NOT_FOUND, `no such job`), so a
 * leaked handle neither links to another user's job nor tells that it exists.
 */
export function checkParent(
  child: { readonly owner: string | null },
  parent: { readonly owner: string | null } | undefined,
): void {
  if (parent === undefined || (child.owner !== null && parent.owner !== child.owner)) throw notFound();
}
