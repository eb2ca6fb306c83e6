/**
 * How a handler ends other than by returning or throwing: ctx.snooze, ctx.discard, ctx.cancel
 * throw one of these, so `return ctx.snooze("30s")` and a bare `ctx.snooze("30s")` both work.
 */
export class HandlerControl extends Error {
  override readonly name = "HandlerControl";
  constructor(
    readonly action: "snooze" | "discard" | "cancel",
    readonly reason: string,
    readonly delayMs = 0,
  ) {
    super(reason);
  }
}
