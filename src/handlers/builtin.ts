import { parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";
import type { Handler } from "../worker/handler.js";

/** ferry.echo: answers its payload. Handy for checking that a worker runs. */
const echo: Handler<unknown, unknown> = (payload) => payload;

/** ferry.sleep: waits `{ ms }` or `{ for: "5s" }` (at most an hour), honouring cancel and timeout. */
const sleep: Handler<{ ms?: number; for?: string }, { slept: number }> = async (payload, ctx) => {
  const ms =
    typeof payload?.ms === "number"
      ? payload.ms
      : typeof payload?.for === "string"
        ? parseDuration(payload.for)
        : NaN;
  if (!Number.isFinite(ms) || ms < 0 || ms > 3_600_000)
    throw invalidArgument("ferry.sleep takes { ms } up to 1h");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    ctx.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(ctx.signal.reason);
    });
  });
  return { slept: ms };
};

export const BUILTIN_HANDLERS = {
  "ferry.echo": echo,
  "ferry.sleep": sleep as Handler<never, unknown>,
} as const;
