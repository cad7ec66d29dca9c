/**
 * The vocabulary of the demo data set: a seedable random source and the places,
 * browsers, systems, referrers and pages its items are made of, with the shape of a
 * visitor's session as Firespring records it. `demo_data.ts` builds the items from it.
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;

/** A small, fast, seedable PRNG (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const S = (s: string): AttributeValue => ({ S: s });
export const N = (n: number | string): AttributeValue => ({ N: String(n) });
export const M = (m: Item): AttributeValue => ({ M: m });

/** Places with their geolocation text as Firespring records it, country code and coordinates. */
export const PLACES: [string, string, number, number][] = [
  ["Toledo, Ohio, USA", "us", 41.6528, -83.5379],
  ["Columbus, Ohio, USA", "us", 39.9612, -82.9988],
  ["Detroit, Michigan, USA", "us", 42.3314, -83.0458],
  ["Chicago, Illinois, USA", "us", 41.8781, -87.6298],
  ["New York, New York, USA", "us", 40.7128, -74.006],
  ["Austin, Texas, USA", "us", 30.2672, -97.7431],
  ["Seattle, Washington, USA", "us", 47.6062, -122.3321],
  ["Bangkok, Thailand", "th", 13.7563, 100.5018],
  ["Canada", "ca", 56.1304, -106.3468],
  ["Toronto, Ontario, Canada", "ca", 43.6532, -79.3832],
  ["London, England, United Kingdom", "gb", 51.5072, -0.1276],
  ["Berlin, Germany", "de", 52.52, 13.405],
  ["München, Bayern, Germany", "de", 48.1351, 11.582],
  ["São Paulo, São Paulo, Brazil", "br", -23.5505, -46.6333],
  ["Mexico City, CDMX, Mexico", "mx", 19.4326, -99.1332],
  ["Mumbai, Maharashtra, India", "in", 19.076, 72.8777],
  ["Tokyo, Japan", "jp", 35.6762, 139.6503],
  ["Sydney, New South Wales, Australia", "au", -33.8688, 151.2093],
  ["Lagos, Nigeria", "ng", 6.5244, 3.3792],
  ["Paris, Île-de-France, France", "fr", 48.8566, 2.3522],
  ["Kyiv, Ukraine", "ua", 50.4501, 30.5234],
  ["Singapore", "sg", 1.3521, 103.8198],
  ["", "", 0, 0],
];
export const BROWSERS = [
  "Chrome 120.0",
  "Chrome 121.0",
  "Safari 17.1",
  "Mobile Safari 17.2",
  "Firefox 121.0",
  "Microsoft Edge 120.0.2210.91",
  "Samsung Internet 23.0",
  "Opera Mini",
];
export const SYSTEMS = [
  "Windows 11",
  "Windows 10",
  "macOS 14",
  "iOS 17",
  "Android 14",
  "Linux",
  "ChromeOS",
];
export const DEVICES = ["desktop", "desktop", "mobile", "mobile", "tablet"];
export const REFERRERS: [string, string, string][] = [
  ["search", "google.com", "https://www.google.com/search?q=toledo+consulting"],
  ["search", "bing.com", "https://www.bing.com/search?q=firespring"],
  ["social", "facebook.com", "https://www.facebook.com/"],
  ["social", "linkedin.com", "https://www.linkedin.com/feed/"],
  ["link", "toledoblade.com", "https://www.toledoblade.com/business"],
  ["direct", "", ""],
  ["advertising", "googleadservices.com", "https://www.googleadservices.com/pagead/aclk"],
  ["email", "mail.google.com", "https://mail.google.com/"],
];
export const PAGES = [
  "/",
  "/services",
  "/about",
  "/contact",
  "/blog/dynamodb-to-postgres",
  "/pricing",
];
export const ACTION_TYPES = [
  "page_view",
  "click",
  "form_submit",
  "download",
  "scroll",
  "video_play",
];
export const JOB_TYPES = ["visitors", "actions", "traffic_sources", "segments"];

/** Epoch seconds of the report's data: January 2026. */
export const START = 1767225600;

export function pick<T>(rnd: () => number, list: T[]): T {
  return list[Math.floor(rnd() * list.length)];
}

export function hex(rnd: () => number, length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += Math.floor(rnd() * 16).toString(16);
  return s;
}

/** Counts at a scale, never below one for a table the report has items in. */
export function scaled(count: number, scale: number): number {
  return count === 0 ? 0 : Math.max(1, Math.round(count * scale));
}

export function session(rnd: () => number, id: string, time: number): AttributeValue {
  const [geolocation, countryCode, lat, lon] = pick(rnd, PLACES);
  const [referrerType, referrerDomain, referrerUrl] = pick(rnd, REFERRERS);
  const fields: Item = {
    session_id: S(id),
    time: N(time),
    time_total: N(Math.floor(rnd() * 1800)),
    ip_address: S(
      `${10 + Math.floor(rnd() * 200)}.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}.${
        1 + Math.floor(rnd() * 254)
      }`,
    ),
    country_code: S(countryCode),
    web_browser: S(pick(rnd, BROWSERS)),
    operating_system: S(pick(rnd, SYSTEMS)),
    device: S(pick(rnd, DEVICES)),
    screen_resolution: S(pick(rnd, ["1920x1080", "1366x768", "390x844", "1440x900", "820x1180"])),
    language: S(
      pick(rnd, ["en-US", "en-GB", "th-TH", "de-DE", "pt-BR", "es-MX", "ja-JP", "fr-FR"]),
    ),
    referrer_url: S(referrerUrl),
    referrer_domain: S(referrerDomain),
    referrer_type: S(referrerType),
    referrer_search: S(referrerType === "search" ? "toledo consulting" : ""),
    landing_page: S(pick(rnd, PAGES)),
    actions: N(1 + Math.floor(rnd() * 20)),
    hostname: S(`host-${hex(rnd, 6)}.example.net`),
    organization: S(
      pick(rnd, ["Buckeye Broadband", "Comcast", "True Internet", "Deutsche Telekom", "NTT", ""]),
    ),
  };
  if (geolocation) {
    fields.geolocation = S(geolocation);
    fields.latitude = N(lat.toFixed(4));
    fields.longitude = N(lon.toFixed(4));
  }
  return M(fields);
}
