/**
 * The rules of `ferry.v1.JobService` about the caller, shared by every call: who may act on which
 * job, what launching takes (rights and quota), what a long wait takes (a watch slot, ended when
 * the token is revoked), how much of a job the caller sees, and the daemon's cap on a cancel's
 * grace.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import type { HandleCalls } from "../api/scoped.js";
import { parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";
import type { Caller } from "./authn.js";
import { checkLaunchRights } from "./launch-rights.js";
import type { OpenWatches } from "./open-watches.js";
import type { Admission, LaunchQuotas } from "./quotas.js";
import { type JobDetail, jobDetailFor } from "./rpc-convert.js";
import { denied } from "./rpc-errors.js";

export interface JobServiceOptions {
  /** The authenticated caller of one call; throws FERRY_UNAUTHENTICATED when there is none. */
  readonly callerOf: (context: HandlerContext) => Caller;
  /** Handlers only admins and users granted them may launch (e.g. `sql.exec`). */
  readonly restrictedHandlers?: ReadonlySet<string>;
  /** Per-user launch quotas; none when absent. */
  readonly quotas?: LaunchQuotas;
  /** The longest grace a cancel may ask for, in ms (`limits.cancel_grace_max`; the library caps at 1 h). */
  readonly cancelGraceMaxMs?: number;
  /** Long calls (`Watch`, `Wait`, `WaitAny`, `Drain`, `Run`) each user may hold open at once; unbounded when absent. */
  readonly openWatches?: OpenWatches;
}

/** A long call's hold: the signal that ends it (caller gone, token revoked), and its release. */
export interface LongCall {
  readonly caller: Caller;
  readonly signal: AbortSignal;
  readonly end: () => void;
}

export interface JobAccess {
  readonly callerOf: (context: HandlerContext) => Caller;
  /** The caller, once it may launch each of `handlers`. */
  launcher(context: HandlerContext, handlers: readonly string[]): Caller;
  /** Runs `launch` of `n` jobs within the caller's quotas: a refusal stores nothing. */
  withinQuota<T>(caller: Caller, n: number, launch: () => Promise<T>): Promise<T>;
  /** Admits `n` launches against the caller's quotas (nothing to settle when there are none). */
  admit(caller: Caller, n: number): Promise<Admission | undefined>;
  /**
   * The handle calls the caller may make: on every job for an admin (the unscoped Ferry), on its
   * own for a submitter (`ferry.as(user)`); a viewer is refused. Each call reads its job once,
   * checking cookie and owner in that read.
   */
  scopeOf(context: HandlerContext): HandleCalls;
  /** What the caller may see of jobs' errors, payloads and owners. */
  detailFor(context: HandlerContext): JobDetail;
  /** A cancel's grace, once within the daemon's cap. */
  graceOf(grace: string | undefined): { grace?: string };
  /** Opens a long call for the caller: refused past the user's cap before it subscribes to anything. */
  openLongCall(context: HandlerContext): LongCall;
  /**
   * A long call opened once its handles are found (`admit`, for the library's wait and follow):
   * an unknown handle answers not found, not the cap; `end` releases it if it was opened.
   */
  longCallOnceFound(context: HandlerContext): PendingLongCall;
}

/** See `JobAccess.longCallOnceFound`. */
export interface PendingLongCall {
  readonly admit: () => AbortSignal;
  /** The call's caller, once admitted. */
  readonly caller: () => Caller | undefined;
  readonly end: () => void;
}

export function jobAccess(ferry: Ferry, options: JobServiceOptions): JobAccess {
  const restricted = options.restrictedHandlers ?? new Set<string>();
  const { callerOf } = options;

  const scopeOf = (context: HandlerContext): HandleCalls => {
    const caller = callerOf(context);
    if (caller.role === "viewer") throw denied("act on jobs");
    // A wrong cookie and another user's job answer byte for byte as an unknown id, and after the
    // same work (the owner is checked in the read that checks the cookie): a leaked handle proves
    // nothing.
    return caller.role === "admin" ? ferry : ferry.as(caller.user);
  };

  const openLongCall = (context: HandlerContext): LongCall => {
    const caller = callerOf(context);
    const closeWatch = options.openWatches?.open(caller.user);
    // A revoked token ends the call too, within the access document's refresh time.
    const session = caller.hold();
    return {
      caller,
      signal: AbortSignal.any([context.signal, session.signal]),
      end: () => {
        session.release();
        closeWatch?.();
      },
    };
  };

  return {
    callerOf,
    launcher(context, handlers) {
      const caller = callerOf(context);
      checkLaunchRights(caller, handlers, restricted);
      return caller;
    },

    admit: async (caller, n) => options.quotas?.admit(caller.user, n),

    async withinQuota(caller, n, launch) {
      const admission = await options.quotas?.admit(caller.user, n);
      try {
        const launched = await launch();
        admission?.stored();
        return launched;
      } catch (error) {
        admission?.refund();
        throw error;
      }
    },

    scopeOf,

    detailFor: (context) => jobDetailFor(callerOf(context).role),

    graceOf(grace) {
      if (grace === undefined) return {};
      const cap = options.cancelGraceMaxMs;
      if (cap !== undefined && parseDuration(grace, "grace") > cap) {
        throw invalidArgument(`grace is capped at ${cap / 1000} s on this daemon (limits.cancel_grace_max)`);
      }
      return { grace };
    },

    openLongCall,

    longCallOnceFound(context) {
      let call: LongCall | undefined;
      return {
        admit: () => {
          call = openLongCall(context);
          return call.signal;
        },
        caller: () => call?.caller,
        end: () => call?.end(),
      };
    },
  };
}
