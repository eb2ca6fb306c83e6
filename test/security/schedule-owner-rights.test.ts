/**
 * What "the owner exists and may launch the handler" means for a schedule (ownerRefusal): the
 * owner is a user with a role and at least one token, not a viewer, and holds the grant of a
 * restricted handler unless an admin. Ownerless (library) schedules are not checked.
 */
import { describe, expect, it } from "vitest";
import {
  type AccessData,
  createToken,
  EMPTY_ACCESS,
  grant,
  revoke,
  revokeTokens,
} from "../../src/auth/access.js";
import { ownerRefusal } from "../../src/daemon/launch-rights.js";

const RESTRICTED = new Set(["sql.exec"]);

function users(): AccessData {
  let data = EMPTY_ACCESS;
  for (const [user, role] of [
    ["root", "admin"],
    ["ann", "submitter"],
    ["sam", "submitter"],
    ["vic", "viewer"],
  ] as const) {
    data = createToken(data, { user, role, now: 0 }).data;
  }
  return grant(data, { by: "root", user: "sam", grant: "sql.exec" });
}

describe("a schedule owner's rights", () => {
  const data = users();
  const refusal = (access: AccessData, owner: string | null, handler: string) =>
    ownerRefusal(access, owner, handler, RESTRICTED);

  it("lets a live owner start what it may launch", () => {
    expect(refusal(data, "ann", "ferry.echo")).toBeUndefined();
    expect(refusal(data, "sam", "sql.exec")).toBeUndefined();
    expect(refusal(data, "root", "sql.exec")).toBeUndefined();
    expect(refusal(data, null, "sql.exec")).toBeUndefined();
  });

  it("holds back a restricted handler without the grant, and anything of a viewer", () => {
    expect(refusal(data, "ann", "sql.exec")).toBe("its owner is not granted sql.exec");
    expect(refusal(revoke(data, { user: "sam", grant: "sql.exec" }), "sam", "sql.exec")).toBe(
      "its owner is not granted sql.exec",
    );
    expect(refusal(data, "vic", "ferry.echo")).toBe("its owner is a viewer, who may not launch jobs");
  });

  it("counts an owner with no token, no role or no entry as gone", () => {
    const gone = "its owner is no longer a user with a valid token";
    expect(refusal(revokeTokens(data, "sam").data, "sam", "ferry.echo")).toBe(gone);
    expect(refusal(revoke(data, { user: "ann", grant: "submitter" }), "ann", "ferry.echo")).toBe(gone);
    expect(refusal(data, "nobody", "ferry.echo")).toBe(gone);
    // With authentication off every schedule was made by "local", who is no user of the document.
    expect(refusal(data, "local", "ferry.echo")).toBe(gone);
  });
});
