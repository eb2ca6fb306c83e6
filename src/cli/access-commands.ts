/**
 * `ferry token create|revoke`, `ferry grant|revoke` and `ferry users`: the daemon's users, over
 * its AdminService, as an admin (FERRY_TOKEN). `token create` prints the new token alone on
 * stdout, so `T=$(ferry token create bob)` works; it is shown this once.
 */
import { Command } from "commander";
import type { User } from "../gen/ferry/v1/admin_pb.js";
import { remoteFromEnv } from "./remote.js";

export function accessCommands(): Command[] {
  const token = new Command("token").description("create or revoke a user's API tokens");
  token
    .command("create <user>")
    .description("a new token for USER (made when new, with --role, default submitter); printed once")
    .option("--role <role>", "admin, submitter or viewer (for a new user)")
    .option("--json", "print {user, token, tokenId} as JSON")
    .action(async (user: string, flags: { role?: string; json?: boolean }) => {
      const answer = await admin().createToken({
        user,
        ...(flags.role === undefined ? {} : { role: flags.role }),
      });
      const out = { user: answer.user, token: answer.token, tokenId: answer.tokenId };
      process.stdout.write(flags.json ? `${JSON.stringify(out)}\n` : `${answer.token}\n`);
      if (!flags.json && process.stderr.isTTY) {
        process.stderr.write(`token ${answer.tokenId} for ${answer.user}: shown this once, keep it safe\n`);
      }
    });
  token
    .command("revoke <user>")
    .description("every token of USER stops working now (open streams end too)")
    .option("--json", "print {revoked} as JSON")
    .action(async (user: string, flags: { json?: boolean }) => {
      const { revoked } = await admin().revokeToken({ user });
      process.stdout.write(
        flags.json ? `${JSON.stringify({ user, revoked })}\n` : `revoked ${revoked} token(s) of ${user}\n`,
      );
    });

  const grant = rightsCommand(
    "grant",
    "give USER a role (admin, submitter, viewer) or a restricted handler (sql.exec)",
    (request) => admin().grant(request),
  );
  const revoke = rightsCommand("revoke", "take a role or handler grant away from USER", (request) =>
    admin().revoke(request),
  );
  const users = new Command("users")
    .description("every user with roles, grants and token count")
    .option("--json", "one JSON object per line")
    .action(async (flags: { json?: boolean }) => {
      const { users } = await admin().listUsers({});
      for (const user of users) printUser(user, flags.json === true);
    });
  return [token, grant, revoke, users];
}

/** `ferry grant|revoke ROLE USER`: one change of rights, answered with the user as it is now. */
function rightsCommand(
  name: string,
  description: string,
  change: (request: { grant: string; user: string }) => Promise<User>,
): Command {
  return new Command(name)
    .description(description)
    .argument("<role>")
    .argument("<user>")
    .option("--json", "print the user as JSON")
    .action(async (role: string, user: string, flags: { json?: boolean }) => {
      printUser(await change({ grant: role, user }), flags.json === true);
    });
}

/** The library has no calls for users and tokens: the AdminService itself, on the client's connection. */
function admin() {
  return remoteFromEnv().connection.admin;
}

function printUser(user: User, json: boolean): void {
  const fields = {
    name: user.name,
    roles: user.roles,
    grants: user.grants,
    tokens: user.tokens,
    createdAt: user.createdAt,
  };
  process.stdout.write(
    json
      ? `${JSON.stringify(fields)}\n`
      : `${user.name}\troles=${user.roles.join(",") || "-"}\tgrants=${user.grants.join(",") || "-"}\ttokens=${user.tokens}\n`,
  );
}
