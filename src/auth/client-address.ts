import { isIPv6 } from "node:net";

/**
 * The key under which failed sign-ins are counted for a peer address. An IPv4 address is its own
 * key; an IPv6 address counts by its /64 network, since one host commonly holds a whole /64 and
 * could otherwise take a fresh address for every guess (and push others out of the table).
 */
export function clientKey(address: string): string {
  if (address.startsWith("::ffff:") || !isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address, `::` expanded and zone dropped. */
function expandIPv6(address: string): string[] {
  const [head = "", tail] = address.split("%")[0]!.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => "0");
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((group) => group.toLowerCase());
}
