import { isIP } from "node:net";

/** Whether an address (a bind address or a peer's) is this machine's loopback. */
export function isLoopback(address: string): boolean {
  if (address === "localhost") return true;
  // A peer on an IPv4 loopback seen through a dual-stack socket: ::ffff:127.0.0.1.
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith("127.");
  return address === "::1";
}
