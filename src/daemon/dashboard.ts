/**
 * The dashboard's static files at `/`: one page, one script, one stylesheet, read once at start
 * (src/daemon/dashboard/). The page calls the same Connect JSON API as everyone else, with a token
 * the user types; the headers below keep it from loading or sending anything elsewhere, from
 * being framed, and from running inline script.
 */
import { readFileSync } from "node:fs";
import type { NodeRequest, NodeResponse } from "./http-types.js";

const FILES = [
  { path: "/", file: "index.html", type: "text/html; charset=utf-8" },
  { path: "/dashboard/app.js", file: "app.js", type: "text/javascript; charset=utf-8" },
  { path: "/dashboard/style.css", file: "style.css", type: "text/css; charset=utf-8" },
] as const;

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

type Route = (request: NodeRequest, response: NodeResponse) => void;

/** The dashboard's GET routes, by path. */
export function dashboardRoutes(): Record<string, Route> {
  const routes: Record<string, Route> = {};
  for (const { path, file, type } of FILES) {
    const body = readFileSync(new URL(`./dashboard/${file}`, import.meta.url));
    routes[path] = (_request, response) => {
      response.writeHead(200, { "content-type": type, "content-length": body.length, ...SECURITY_HEADERS });
      response.end(body);
    };
  }
  // Browsers ask for it on their own: no icon, and no 404 in the console.
  routes["/favicon.ico"] = (_request, response) => {
    response.writeHead(204, SECURITY_HEADERS);
    response.end();
  };
  return routes;
}
