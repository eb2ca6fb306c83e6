/**
 * The NATS store's events: this process's listeners hear them at once, other processes over a core
 * NATS subject (nothing kept: a process that misses one catches up by polling).
 */
import { EventEmitter } from "node:events";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { StoreEvent } from "../store.js";

/** On the wire: the sending store (`o`), queues enqueued (`e`), jobs changed (`c`), a cancel (`x`). */
export interface WireEvent {
  o: string;
  e?: string[];
  c?: string[];
  x?: [string, number];
}

const encoder = new TextEncoder();

export class NatsEvents {
  readonly #emitter = new EventEmitter();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly origin: string,
    private readonly isClosed: () => boolean,
  ) {
    this.#emitter.setMaxListeners(0);
  }

  /** Tells this process's listeners only. */
  emit(event: StoreEvent): void {
    this.#emitter.emit("event", event);
  }

  /** A listener of the store's own (its errors are not caught, unlike `subscribe`'s). */
  on(listener: (event: StoreEvent) => void): void {
    this.#emitter.on("event", listener);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    const safe = (event: StoreEvent) => {
      try {
        listener(event);
      } catch {
        // A listener's error is its own.
      }
    };
    this.#emitter.on("event", safe);
    return () => this.#emitter.off("event", safe);
  }

  removeAllListeners(): void {
    this.#emitter.removeAllListeners();
  }

  /** Hears the other processes' events. */
  listen(): Subscription {
    return this.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.onWire(msg.data);
      },
    });
  }

  /** Tells this process's listeners at once, and the other processes over NATS. */
  announce(events: readonly StoreEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) this.#emitter.emit("event", event);
    const queues = events.flatMap((e) => (e.type === "enqueued" ? [e.queue] : []));
    if (queues.length > 0) this.publishEvent({ o: this.origin, e: queues });
  }

  /** A job changed: local listeners always; other processes when somebody watches it. */
  changed(ids: readonly string[], quiet = false): void {
    for (const id of ids) this.#emitter.emit("event", { type: "changed", id });
    if (!quiet) this.publishEvent({ o: this.origin, c: [...ids] });
  }

  send(event: StoreEvent, wire: Omit<WireEvent, "o">): void {
    this.#emitter.emit("event", event);
    this.publishEvent({ o: this.origin, ...wire });
  }

  private publishEvent(event: WireEvent): void {
    if (this.isClosed()) return;
    try {
      this.nc.publish(this.subject, encoder.encode(JSON.stringify(event)));
    } catch {
      // Events are hints: pollers catch up.
    }
  }

  private onWire(data: Uint8Array): void {
    let event: WireEvent;
    try {
      event = JSON.parse(new TextDecoder().decode(data)) as WireEvent;
    } catch {
      return;
    }
    if (event.o === this.origin) return;
    for (const queue of event.e ?? []) {
      this.#emitter.emit("event", { type: "enqueued", queue });
    }
    for (const id of event.c ?? []) this.#emitter.emit("event", { type: "changed", id });
    if (event.x !== undefined)
      this.#emitter.emit("event", { type: "cancel", id: event.x[0], graceMs: event.x[1] });
  }
}
