/**
 * The NATS store URL: what each form parses to, every refusal, and that no refusal message (nor
 * the redacted URL) shows the password or token.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, FerryError } from "../../src/core/errors.js";
import { type NatsStoreConfig, parseNatsStoreUrl, redactNatsUrl } from "../../src/store/nats/store-url.js";

const defaults: NatsStoreConfig = {
  servers: ["127.0.0.1:4222"],
  prefix: "ferry",
  replicas: 1,
  auth: { kind: "none" },
  tls: undefined,
};

describe("parseNatsStoreUrl accepts", () => {
  const cases: [string, Partial<NatsStoreConfig>][] = [
    ["nats://127.0.0.1", {}],
    ["nats://127.0.0.1/", {}],
    ["NATS://127.0.0.1:4222", {}],
    [
      "nats://a.example:4223,b.example,c_1:5000",
      { servers: ["a.example:4223", "b.example:4222", "c_1:5000"] },
    ],
    ["nats://[::1]:4300,[fe80::1%25eth0]", { servers: ["[::1]:4300", "[fe80::1%25eth0]:4222"] }],
    ["nats://h:65535", { servers: ["h:65535"] }],
    ["nats://ferry:s3cret@127.0.0.1", { auth: { kind: "userpass", user: "ferry", pass: "s3cret" } }],
    [
      "nats://us%40er:p%40ss%3Aw%2Fo%3Fr%23d%25@127.0.0.1",
      { auth: { kind: "userpass", user: "us@er", pass: "p@ss:w/o?r#d%" } },
    ],
    ["nats://u:a:b@127.0.0.1", { auth: { kind: "userpass", user: "u", pass: "a:b" } }],
    ["nats://u:s3c,retPW@127.0.0.1", { auth: { kind: "userpass", user: "u", pass: "s3c,retPW" } }],
    // An unescaped '@' in the password: the last '@' ends the user part.
    ["nats://u:p@ss@127.0.0.1", { auth: { kind: "userpass", user: "u", pass: "p@ss" } }],
    ["nats://tok123@127.0.0.1", { auth: { kind: "token", token: "tok123" } }],
    ["nats://tok%2B1%20x@127.0.0.1", { auth: { kind: "token", token: "tok+1 x" } }],
    [
      "nats://127.0.0.1?creds=/etc/nats/user.creds",
      { auth: { kind: "creds", file: "/etc/nats/user.creds" } },
    ],
    ["nats://127.0.0.1?nkey=/etc/nats/seed.nk", { auth: { kind: "nkey", seedFile: "/etc/nats/seed.nk" } }],
    ["tls://127.0.0.1", { tls: {} }],
    ["nats://127.0.0.1?tls=1", { tls: {} }],
    ["nats://127.0.0.1?tls=true", { tls: {} }],
    ["nats://127.0.0.1?tls=0", {}],
    ["tls://127.0.0.1?tls=1", { tls: {} }],
    ["nats://127.0.0.1?ca=/p/ca.pem", { tls: { caFile: "/p/ca.pem" } }],
    [
      "tls://127.0.0.1?ca=/p/ca.pem&cert=/p/c.pem&key=/p/c.key",
      { tls: { caFile: "/p/ca.pem", certFile: "/p/c.pem", keyFile: "/p/c.key" } },
    ],
    ["nats://127.0.0.1?cert=/p/c.pem&key=/p/c.key", { tls: { certFile: "/p/c.pem", keyFile: "/p/c.key" } }],
    ["nats://127.0.0.1?ca=/p/with%20space+plus.pem", { tls: { caFile: "/p/with space+plus.pem" } }],
    ["nats://127.0.0.1?prefix=Ferry_prod-2", { prefix: "Ferry_prod-2" }],
    ["nats://127.0.0.1?prefix=" + "p".repeat(32), { prefix: "p".repeat(32) }],
    ["nats://127.0.0.1?replicas=3", { replicas: 3 }],
    ["nats://127.0.0.1?replicas=5", { replicas: 5 }],
    ["nats://127.0.0.1?name=billing%20worker", { name: "billing worker" }],
    ["nats://127.0.0.1?&prefix=a&", { prefix: "a" }],
    [
      "tls://ferry:pw@n1:4222,n2:4222,n3:4222?prefix=app&replicas=3&ca=/ca.pem&name=w1",
      {
        servers: ["n1:4222", "n2:4222", "n3:4222"],
        prefix: "app",
        replicas: 3,
        auth: { kind: "userpass", user: "ferry", pass: "pw" },
        tls: { caFile: "/ca.pem" },
        name: "w1",
      },
    ],
  ];

  it.each(cases)("%s", (url, expected) => {
    expect(parseNatsStoreUrl(url)).toEqual({ ...defaults, ...expected });
  });
});

/** The secrets the refusal URLs carry; no message may show them, whole or in pieces. */
const PASSWORD = "s3cretPW";
const TOKEN = "tok3nSECRET";

describe("parseNatsStoreUrl refuses", () => {
  const cases: [string, RegExp][] = [
    ["", /must start with nats:\/\/ or tls:\/\//],
    ["http://127.0.0.1", /must start with nats:\/\/ or tls:\/\//],
    ["nats:127.0.0.1", /must start with nats:\/\/ or tls:\/\//],
    ["nats://", /names no server/],
    [`nats://u:${PASSWORD}@`, /names no server/],
    [`nats://${TOKEN}@?prefix=a`, /names no server/],
    ["nats://a,,b", /empty host name/],
    ["nats://a,", /empty host name/],
    ["nats://:4222", /empty host name/],
    ["nats://ho st", /invalid host name: "ho st"/],
    ["nats://a/b", /invalid host name|must not have a path/],
    ["nats://h/path", /must not have a path/],
    ["nats://h#frag", /#fragment/],
    ["nats://h:0", /invalid port "0"/],
    ["nats://h:65536", /invalid port "65536"/],
    ["nats://h:42x", /invalid port "42x"/],
    ["nats://h:", /empty port after ':'/],
    ["nats://h:-1", /invalid port "-1"/],
    [
      "nats://h?foo=1",
      /unknown parameter "foo" \(known: prefix, replicas, tls, ca, cert, key, creds, nkey, name\)/,
    ],
    ["nats://h?user=x", /unknown parameter "user"/],
    ["nats://h?Prefix=x", /unknown parameter "Prefix"/],
    ["nats://h?prefix=a&prefix=b", /gives \?prefix= twice/],
    ["nats://h?ca=", /\?ca= in the nats store URL is empty/],
    ["nats://h?tls", /\?tls= in the nats store URL is empty/],
    ["nats://h?name=%zz", /\?name= .* not valid percent-encoding/],
    ["nats://h?tls=yes", /\?tls= .* must be 1 or 0, not "yes"/],
    ["tls://h?tls=0", /\?tls=0 but also asks for TLS/],
    ["nats://h?tls=0&ca=/ca.pem", /\?tls=0 but also asks for TLS/],
    ["nats://h?cert=/c.pem", /needs \?cert= and \?key= together/],
    ["nats://h?key=/c.key", /needs \?cert= and \?key= together/],
    ["nats://h?prefix=a.b", /\?prefix= .* 1 to 32 letters, digits, _ or -, not "a.b"/],
    ["nats://h?prefix=a*", /\?prefix= /],
    ["nats://h?prefix=" + "p".repeat(33), /\?prefix= /],
    ["nats://h?replicas=0", /\?replicas= .* must be 1 to 5, not "0"/],
    ["nats://h?replicas=6", /\?replicas= .* must be 1 to 5, not "6"/],
    ["nats://h?replicas=1.5", /\?replicas= .* must be 1 to 5/],
    ["nats://h?replicas=x", /\?replicas= .* must be 1 to 5/],
    ["nats://h?name=a%0Ab", /\?name= .* printable/],
    [`nats://u:${PASSWORD}@h?creds=/u.creds`, /two ways to log in \(user and password and \?creds=\)/],
    [`nats://${TOKEN}@h?nkey=/seed.nk`, /two ways to log in \(token and \?nkey=\)/],
    ["nats://h?creds=/u.creds&nkey=/seed.nk", /two ways to log in \(\?creds= and \?nkey=\)/],
    ["nats://u:@h", /the password in the nats store URL is empty/],
    [`nats://:${PASSWORD}@h`, /the user name in the nats store URL is empty/],
    ["nats://@h", /the token in the nats store URL is empty/],
    [`nats://u:${PASSWORD}%zz@h`, /the password in the nats store URL is not valid percent-encoding/],
    [`nats://${TOKEN}%@h`, /the token in the nats store URL is not valid percent-encoding/],
    // Unescaped delimiters inside a secret split the URL in the wrong place: still refused, still hidden.
    [`nats://u:${PASSWORD}/x@h`, /must not have a path/],
    [`nats://u:s3c?retPW@h`, /invalid port <not shown: it may be part of the credentials>/],
    [`nats://u:${PASSWORD}?prefix=x@h`, /invalid port <not shown/],
    [`nats://${TOKEN}?a=b@h`, /unknown parameter <not shown/],
    [`nats://${TOKEN}/x@h`, /must not have a path/],
    ["nats://h?a@b=1", /unknown parameter <not shown/],
  ];

  /** Every piece of a secret that a wrong split could make out of it (3 characters or more). */
  const secretPieces = [PASSWORD, TOKEN, "s3c", "retPW", "s3c?retPW"];

  it.each(cases)("%s", (url, message) => {
    let caught: unknown;
    try {
      parseNatsStoreUrl(url);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FerryError);
    const error = caught as FerryError;
    expect(error.code).toBe(ErrorCode.InvalidArgument);
    for (const piece of secretPieces) expect(error.message).not.toContain(piece);
    expect(JSON.stringify(error.details ?? {})).not.toContain(PASSWORD);
    expect(error.message).toMatch(message);
  });

  it("a non-string is refused as an invalid argument", () => {
    expect(() => parseNatsStoreUrl(42 as unknown as string)).toThrow(FerryError);
  });
});

describe("redactNatsUrl", () => {
  it.each([
    ["nats://ferry:s3cret@h:4222?prefix=x", "nats://ferry:***@h:4222?prefix=x"],
    ["nats://tok123@h1,h2", "nats://***@h1,h2"],
    ["tls://u:p%40ss@h?ca=/ca.pem", "tls://u:***@h?ca=/ca.pem"],
    ["nats://h:4222?prefix=x", "nats://h:4222?prefix=x"],
    // Unescaped delimiters in the password: everything up to the last '@' is hidden.
    ["nats://u:pa/ss?x@h", "nats://u:***@h"],
    ["nats://to/ken@h", "nats://***@h"],
    ["not a url", "not a url"],
    ["", ""],
  ])("%s → %s", (url, redacted) => {
    expect(redactNatsUrl(url)).toBe(redacted);
  });
});
