/**
 * The child process that runs one process-isolated plugin (see process-plugin.ts). Plain
 * JavaScript, so it starts without a TypeScript loader. It imports the plugin module named by its
 * first argument, tells the daemon what the plugin exports, and runs the handler calls the daemon
 * sends. Messages are one JSON object a line on fd 3, a plain pipe (host-channel.ts says why not
 * Node's IPC channel); a line may be at most the byte count of the second argument:
 *   daemon -> host: { type: "call", id, handler, payload, job } | { type: "abort", id, code, message }
 *   host -> daemon: { type: "ready", name, version, handlers: [[key, isFunction]] }
 *                 | { type: "aborting", id }  (the abort was heard: the host is not stuck)
 *                 | { type: "load-failed", message }
 *                 | { type: "progress", id, fraction }
 *                 | { type: "result", id, ok: true, value } | { type: "result", id, ok: false, error }
 * Anything the plugin does wrong beyond a thrown error (exit, uncaught exception, OOM, a busy loop)
 * ends or stalls this process; the daemon notices and fails the calls in flight. The process runs
 * under Node's permission model (host-process.ts): no loader hooks here, since Node 20 runs them on
 * a worker thread, which the permission model forbids; the read allow-list is what keeps imports
 * inside the plugin's folder. `ferry` resolves without a hook: the module is imported through a
 * private folder whose node_modules holds Ferry (its second argument, resolve-root.ts).
 */
import { Socket } from "node:net";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const file = process.argv[2];
/** The longest line the daemon accepts; a longer one would get this process killed. */
const maxMessageBytes = Number(process.argv[3]);
/**
 * The private folder the module is imported through (resolve-root.ts), or undefined. Paths below
 * it are the real paths with it in front: messages show them without it.
 */
const root = process.argv[4] || undefined;
/** The plugin's real folder: the daemon starts this process in it. */
const folder = process.cwd();
/** Both ways: the daemon's end is a socket pair too. */
const channel = new Socket({ fd: 3, readable: true, writable: true });

function realPaths(text) {
  if (root === undefined) return text;
  return text.replaceAll(pathToFileURL(root).href, "file://").replaceAll(root, "");
}

function insideFolder(path) {
  const rel = relative(folder, path);
  return rel === "" || (rel !== ".." && !rel.startsWith("../") && !isAbsolute(rel));
}
/** id -> AbortController of the calls running now. */
const running = new Map();
let plugin;

/** Thrown by ctx.snooze, ctx.discard and ctx.cancel; the daemon replays it on the real context. */
class Control extends Error {
  constructor(action, reason, delay) {
    super(reason);
    this.control = { action, reason, delay };
  }
}

function send(message) {
  if (!channel.writable) return;
  let line;
  try {
    line = JSON.stringify(message);
  } catch (error) {
    // A result that JSON cannot carry (a BigInt, a cycle): the call fails, the host goes on.
    return failResult(message, "FERRY_SERIALIZATION", `the result cannot be sent as JSON: ${error.message}`);
  }
  // Said here rather than by the daemon, which would kill this process for the long line.
  if (Buffer.byteLength(line) > maxMessageBytes) {
    return failResult(
      message,
      "FERRY_PAYLOAD_TOO_LARGE",
      `the result is longer than ${maxMessageBytes} bytes as JSON ([limits] max_payload_bytes)`,
    );
  }
  channel.write(`${line}\n`);
}

function failResult(message, code, text) {
  if (message.type === "result" && message.ok)
    send({ type: "result", id: message.id, ok: false, error: { code, message: text } });
}

function describe(thrown) {
  const error = { message: "error" };
  try {
    if (thrown instanceof Control) return { message: thrown.message, control: thrown.control };
    error.message =
      thrown !== null && typeof thrown === "object" && typeof thrown.message === "string"
        ? thrown.message
        : String(thrown);
    if (thrown !== null && typeof thrown === "object") {
      // Node's "Access to this API has been restricted" alone does not say what was refused.
      if (thrown.code === "ERR_ACCESS_DENIED")
        error.message += ` (${String(thrown.permission)}${thrown.resource ? `: ${thrown.resource}` : ""})`;
      if (typeof thrown.code === "string") error.code = thrown.code;
      if (typeof thrown.retryable === "boolean") error.retryable = thrown.retryable;
      if (typeof thrown.detail === "string") error.detail = thrown.detail;
    }
  } catch {
    error.message = "thrown value that cannot be described";
  }
  // The daemon cuts it again; this only keeps a 100 MB error message off the channel.
  if (error.message.length > 65_536) error.message = error.message.slice(0, 65_536);
  error.message = realPaths(error.message);
  return error;
}

/**
 * Why the module did not load. The permission model refuses every read outside the plugin's folder
 * and Ferry: that is how an import resolving elsewhere is refused, so say it in those words.
 */
function loadFailure(error) {
  if (error?.code === "ERR_ACCESS_DENIED") {
    if (error.permission === "FileSystemRead" && typeof error.resource === "string")
      return (
        `it loads or reads ${error.resource}, outside its folder: a plugin may import only node: ` +
        "built-ins, ferry and the files in its own folder (its node_modules included)"
      );
    return `it needs a permission plugins do not get (${String(error.permission)})`;
  }
  // Imported through the resolve root, a relative path that leaves the folder lands in the root,
  // where nothing is: the same refusal, named by the real path.
  if (error?.code === "ERR_MODULE_NOT_FOUND" || error?.code === "MODULE_NOT_FOUND") {
    const missing = missingPath(error);
    if (missing !== undefined && !insideFolder(missing))
      return (
        `it imports ${missing}, outside its folder: a plugin may import only node: ` +
        "built-ins, ferry and the files in its own folder (its node_modules included)"
      );
  }
  return describe(error).message;
}

/** The real path a failed import or require looked for, when it names a path. */
function missingPath(error) {
  const request = /Cannot find module '([^']+)'/.exec(String(error.message))?.[1];
  if (request === undefined) return undefined;
  if (isAbsolute(request)) return realPaths(request);
  // CommonJS says the request as written; its first requirer is where it was resolved from.
  const from = Array.isArray(error.requireStack) ? error.requireStack[0] : undefined;
  if (!request.startsWith(".") || typeof from !== "string") return undefined;
  return realPaths(resolve(dirname(from), request));
}

async function call({ id, handler, payload, job }) {
  const controller = new AbortController();
  running.set(id, controller);
  const ctx = {
    job: { ...job, launchedAt: new Date(job.launchedAt) },
    signal: controller.signal,
    progress: async (fraction) => {
      if (typeof fraction !== "number" || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
        throw Object.assign(new Error("progress must be a number from 0 to 1"), {
          code: "FERRY_INVALID_ARGUMENT",
        });
      }
      send({ type: "progress", id, fraction });
    },
    snooze: (delay) => {
      throw new Control("snooze", "snoozed", delay);
    },
    discard: (reason) => {
      throw new Control("discard", String(reason));
    },
    cancel: (reason) => {
      throw new Control("cancel", String(reason));
    },
  };
  try {
    const fn = plugin.handlers[handler];
    if (typeof fn !== "function")
      throw Object.assign(new Error(`no handler ${handler}`), { code: "FERRY_UNKNOWN_HANDLER" });
    const value = await fn(payload, ctx);
    send({ type: "result", id, ok: true, value });
  } catch (thrown) {
    send({ type: "result", id, ok: false, error: describe(thrown) });
  } finally {
    running.delete(id);
  }
}

function onMessage(message) {
  if (message === null || typeof message !== "object") return;
  if (message.type === "call") void call(message);
  else if (message.type === "abort") {
    // Heard at once: the daemon kills a host whose event loop is too busy to say so.
    send({ type: "aborting", id: message.id });
    const reason = Object.assign(new Error(String(message.message)), { code: String(message.code) });
    running.get(message.id)?.abort(reason);
  }
}

// The daemon is trusted and writes only whole JSON lines, so no cap on this side.
let pending = "";
channel.setEncoding("utf8");
channel.on("data", (text) => {
  pending += text;
  let end = pending.indexOf("\n");
  while (end !== -1) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    if (line !== "") onMessage(JSON.parse(line));
    end = pending.indexOf("\n");
  }
});
// The daemon went away: nothing more will be asked.
channel.on("end", () => process.exit(0));
channel.on("error", () => process.exit(0));

try {
  const module = await import(pathToFileURL(file).href);
  let exported = module.default;
  // A CommonJS module compiled from ESM: `exports.default` arrives one level down.
  if (exported !== null && typeof exported === "object" && !("name" in exported) && "default" in exported) {
    exported = exported.default;
  }
  if (exported === null || typeof exported !== "object") throw new Error("the module has no default export");
  const handlers = exported.handlers;
  const entries =
    handlers !== null && typeof handlers === "object"
      ? Object.keys(handlers).map((key) => [key, typeof handlers[key] === "function"])
      : [];
  plugin = { handlers: handlers ?? {} };
  send({ type: "ready", name: exported.name, version: exported.version, handlers: entries });
} catch (error) {
  // The daemon ends this process once it has read why.
  send({ type: "load-failed", message: loadFailure(error) });
}
