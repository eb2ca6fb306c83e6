/**
 * Which user plugin processes run as (`[plugins] user`). A daemon running as root gives them
 * `nobody` unless told otherwise: another uid is what keeps a plugin from reading the daemon's
 * `/proc/PID/environ` and memory, or signalling it. A daemon that is not root can only run them as
 * itself (docs/plugins.md says what then holds).
 */
import { invalidArgument } from "../core/errors.js";
import { lines, type PluginUser } from "./file-rules.js";

/** The user plugins run as when a root daemon's config names none. */
export const DEFAULT_PLUGIN_USER = "nobody";

/** The user this process runs as. */
export function daemonUser(): PluginUser {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const name = lines("/etc/passwd").find((fields) => Number(fields[2]) === uid)?.[0] ?? String(uid);
  return { name, uid, gid };
}

/**
 * The user named by `[plugins] user`: a name from /etc/passwd, a uid, or `uid:gid`; empty means
 * `nobody` for a root daemon and the daemon's own user otherwise. Throws FERRY_INVALID_ARGUMENT for
 * an unknown user, or another user than its own asked of a daemon that is not root.
 */
export function resolvePluginUser(setting: string, daemon: PluginUser = daemonUser()): PluginUser {
  const wanted = setting.trim();
  if (wanted === "") return daemon.uid === 0 ? lookUp(DEFAULT_PLUGIN_USER) : daemon;
  const user = /^\d+(:\d+)?$/.test(wanted) ? numeric(wanted) : lookUp(wanted);
  if (daemon.uid !== 0 && (user.uid !== daemon.uid || user.gid !== daemon.gid))
    throw invalidArgument(
      `plugins.user: only a daemon running as root can run plugins as another user (${wanted}); ` +
        `this one runs as ${daemon.name} (uid ${daemon.uid})`,
    );
  return user;
}

function lookUp(name: string): PluginUser {
  const fields = lines("/etc/passwd").find((f) => f[0] === name);
  if (fields === undefined)
    throw invalidArgument(`plugins.user: no user ${JSON.stringify(name)} in /etc/passwd`);
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

function numeric(text: string): PluginUser {
  const [uidText, gidText] = text.split(":");
  const uid = Number(uidText);
  const fields = lines("/etc/passwd").find((f) => Number(f[2]) === uid);
  const gid = gidText !== undefined ? Number(gidText) : fields !== undefined ? Number(fields[3]) : uid;
  if (uid > 0xffff_fffe || gid > 0xffff_fffe) throw invalidArgument(`plugins.user: ${text} is out of range`);
  return { name: fields?.[0] ?? String(uid), uid, gid };
}
