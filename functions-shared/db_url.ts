/**
 * The database connection string the Edge Functions use (`SYNC_DB_URL`, else the
 * platform's `SUPABASE_DB_URL`; docs/interfaces.md, "Settings"), parsed and checked once:
 * what it names (a direct connection, a session pooler, a transaction pooler) decides
 * how the pool is opened (sync_db.ts).
 *
 * A hosted project offers three ways in
 * (https://supabase.com/docs/guides/database/connecting-to-postgres): the direct
 * connection `db.<ref>.supabase.co:5432`, which `SUPABASE_DB_URL` names; the shared
 * pooler (Supavisor) `aws-0-<region>.pooler.supabase.com`, session mode on 5432 and
 * transaction mode on 6543; and the dedicated pooler (PgBouncer) on the database's host,
 * port 6543, in transaction mode. Port 6543 is transaction mode on both; a URL says so
 * itself with `?pgbouncer=true` (Prisma's convention, which Supabase's docs show).
 *
 * Errors never repeat the URL: it holds the password.
 *
 * @module
 */

/** How the connection is encrypted, after libpq's `sslmode` (https://www.postgresql.org/docs/15/libpq-ssl.html). */
export type DbTls = "disable" | "prefer" | "require" | "verify-full";

/** A checked connection string and what it tells about the connection. */
export interface DbTarget {
  /** The URL as given, for the driver (parameters of ours removed). */
  url: string;
  host: string;
  port: number;
  database: string;
  user: string;
  /**
   * Whether the URL names a transaction-mode pooler (port 6543, or `pgbouncer=true`):
   * then no prepared statements, no session state (sync_db.ts).
   */
  transactionPooler: boolean;
  /** From `sslmode`; when absent, `require` for Supabase's hosts, else `prefer` (libpq's default). */
  tls: DbTls;
}

/** Supabase's port for transaction mode, on Supavisor and on the dedicated PgBouncer. */
export const TRANSACTION_POOLER_PORT = 6543;

const SSL_MODES: Record<string, DbTls> = {
  disable: "disable",
  allow: "prefer",
  prefer: "prefer",
  require: "require",
  // verify-ca checks the chain but not the host name; we check both, the stricter.
  "verify-ca": "verify-full",
  "verify-full": "verify-full",
};

/** The query parameters a URL may carry; anything else would reach Postgres as a startup parameter. */
const KNOWN_PARAMETERS = ["sslmode", "pgbouncer"];

/** Whether `host` is one of Supabase's (`*.supabase.co`, `*.supabase.com`): TLS always offered. */
export function isSupabaseHost(host: string): boolean {
  return /\.supabase\.(co|com)$/i.test(host);
}

/**
 * Whether a connection goes through a pooler whose server connections the Edge Functions
 * share: Supavisor in either mode (`*.pooler.supabase.com`, ports 5432 and 6543; "the
 * pool size is shared between session and transaction mode") or a transaction pooler
 * (port 6543, or `pgbouncer=true`: a project's dedicated PgBouncer, the local stack's).
 */
export function isSharedPooler(target: DbTarget): boolean {
  return isSupavisorHost(target.host) || target.transactionPooler;
}

/** Whether `host` is Supabase's shared pooler, Supavisor (`*.pooler.supabase.com`). */
export function isSupavisorHost(host: string): boolean {
  return host.endsWith(".pooler.supabase.com");
}

/**
 * A URL's host as a name server reads it: a postgresql:// URL's host is kept as written
 * (it is no special scheme's, so the URL parser neither lowercases it nor drops a final
 * dot), and `DB.<ref>.SUPABASE.CO.` names the host `db.<ref>.supabase.co` while passing
 * none of the checks that compare it. A comma would make it the driver's list of hosts
 * (postgres.js connects to `a,b` as to a, then b), which no check reads whole: refused,
 * as is any character a host name or an IPv4 address does not have. An IPv6 address is
 * refused too: postgres.js 3.4 splits a URL's host at its first colon (`[::1]` becomes
 * the host `[`), so it would pass every check here and fail at the first connection.
 */
function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) {
    throw new Error(
      "a postgresql:// URL whose host is a name or an IPv4 address (the driver cannot " +
        "connect to an IPv6 address written in a URL: name its host)",
    );
  }
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) {
    throw new Error(
      "a postgresql:// URL whose host is one name (letters, digits, dots, hyphens, underscores) " +
        "or an IPv4 address (it has other characters: a list of hosts is not taken)",
    );
  }
  return host;
}

/**
 * Parses a Postgres connection string; throws an Error saying what is wrong with it
 * (never quoting the URL, which holds the password).
 */
export function parseDbUrl(text: string): DbTarget {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new Error("a postgresql://user:password@host:port/database URL (this is not a URL)");
  }
  if (url.protocol !== "postgresql:" && url.protocol !== "postgres:") {
    throw new Error(
      `a postgresql://user:password@host:port/database URL (the scheme is ${url.protocol})`,
    );
  }
  // A password with an unencoded @ followed by a /, ? or #: the user and password end at
  // that first @, the rest of the password is read as the host, and what follows it as
  // the database name or parameters, which a message or a log would then show. Nothing
  // after the host may hold an @ (nor a fragment): refused before any part is repeated.
  if (
    url.hash !== "" || url.pathname.includes("@") || url.search.includes("@") ||
    url.pathname.replace(/^\//, "").includes("/")
  ) {
    throw new Error(
      "a postgresql://user:password@host:port/database URL whose password is percent-encoded " +
        "(after the host it has an @, a # or a second /: write @ / ? # in the password as " +
        "%40 %2F %3F %23)",
    );
  }
  if (url.hostname === "") throw new Error("a postgresql:// URL with a host (it names none)");
  if (url.username === "") throw new Error("a postgresql:// URL with a user (it names none)");
  const host = hostOf(url);
  const port = url.port === "" ? 5432 : Number(url.port);
  const decoded = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new Error(
        `a postgresql:// URL whose ${what} is percent-encoded (a % must begin %XX: write a % as %25)`,
      );
    }
  };
  decoded(url.password, "password");
  // Supabase's hosts take a password always: without one the driver would send
  // PGPASSWORD's, or none, and fail only at its first query.
  if (url.password === "" && isSupabaseHost(host)) {
    throw new Error(`a postgresql:// URL with the password for Supabase's host ${host}`);
  }
  const database = decoded(url.pathname.replace(/^\//, ""), "database name") || "postgres";
  const unknown = [...url.searchParams.keys()].filter((key) => !KNOWN_PARAMETERS.includes(key));
  if (unknown.length > 0) {
    throw new Error(
      `a postgresql:// URL whose parameters are among ${KNOWN_PARAMETERS.join(", ")} ` +
        `(it has ${unknown.join(", ")})`,
    );
  }
  // Without one, libpq's own default (prefer: encrypted when the server offers it), and
  // require for Supabase's hosts, which always do: a URL without sslmode (the platform's
  // SUPABASE_DB_URL, say) must not send rows in the clear.
  const sslmode = url.searchParams.get("sslmode") ??
    (isSupabaseHost(host) ? "require" : "prefer");
  const tls = SSL_MODES[sslmode];
  if (tls === undefined) {
    throw new Error(
      `a postgresql:// URL whose sslmode is one of ${Object.keys(SSL_MODES).join(", ")} ` +
        `(it is ${JSON.stringify(sslmode)})`,
    );
  }
  // Supabase's hosts always offer TLS; disable, allow or prefer would let the password
  // and the rows cross the internet in the clear (prefer and allow fall back to it).
  if (isSupabaseHost(host) && (tls === "disable" || tls === "prefer")) {
    throw new Error(
      `a postgresql:// URL whose sslmode is require or verify-full for Supabase's host ` +
        `${host} (it is ${sslmode}: the password and the rows would cross the ` +
        "internet unencrypted)",
    );
  }
  const pgbouncer = url.searchParams.get("pgbouncer");
  if (pgbouncer !== null && pgbouncer !== "true" && pgbouncer !== "false") {
    throw new Error(`a postgresql:// URL whose pgbouncer is true or false (it is ${pgbouncer})`);
  }
  const driverUrl = new URL(url.href);
  driverUrl.search = "";
  driverUrl.hostname = host;
  // Named, as it is described: without one the driver would take the user's name.
  if (url.pathname.replace(/^\//, "") === "") driverUrl.pathname = `/${database}`;
  return {
    url: driverUrl.href,
    host,
    port,
    database,
    user: decoded(url.username, "user name"),
    transactionPooler: port === TRANSACTION_POOLER_PORT || pgbouncer === "true",
    tls,
  };
}

/** `user@host:port/database`, for logs and messages: never the password. */
export function describeDbTarget(target: DbTarget): string {
  const mode = target.transactionPooler ? "transaction pooler" : "direct or session";
  return `${target.user}@${target.host}:${target.port}/${target.database} (${mode}, tls ${target.tls})`;
}
