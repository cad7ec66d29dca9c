/**
 * A stand-in for the part of Supabase's Management API that `supabase functions deploy`
 * calls, so that the real CLI can deploy this repository's functions here as it would to
 * a hosted project (tests/functions_deploy_test.ts). The routes and shapes are the CLI's
 * own client's (the Management API's OpenAPI operations v1DeployAFunction,
 * v1BulkUpdateFunctions and v1GetProject, in pkg/api of github.com/supabase/cli):
 *
 * - every request needs `Authorization: Bearer <the access token>`: else 401;
 * - a project other than the one served: 404;
 * - `POST /v1/projects/{ref}/functions/deploy?slug=…[&bundleOnly=true]`: a multipart form
 *   of `metadata` (entrypoint_path, import_map_path, static_patterns, verify_jwt, name) and
 *   one `file` part per uploaded file, named by its path. The upload is bundled as the
 *   servers would (function_bundle.ts): a module missing from it, a path outside the
 *   project, or a bundle over 5 MB answers 400 naming why; else 201 with the function
 *   (its version counting deployments). Without `bundleOnly`, the function is live at once;
 *   with it, the version waits, and the live one (if any) serves meanwhile;
 * - `PUT /v1/projects/{ref}/functions`: the functions bundled with `bundleOnly`, made live
 *   together (200);
 * - `GET /v1/projects/{ref}`, `GET /v1/projects/{ref}/functions`: the project, the functions.
 *
 * @module
 */

import { bundleUpload, type Upload } from "./function_bundle.ts";

/** A function as the stand-in holds it. */
export interface DeployedFunction {
  slug: string;
  version: number;
  verifyJwt: boolean;
  entrypointPath: string;
  importMapPath?: string;
  /** The uploaded files' paths. */
  files: string[];
  /** The bundle's size, as the servers measure it. */
  bytes: number;
}

/** A running stand-in. */
export interface ManagementApi {
  url: string;
  /** The live functions by slug: what serves requests. */
  functions: Map<string, DeployedFunction>;
  /**
   * Versions deployed with `bundleOnly`, by slug, not live until the bulk update names
   * them (the live version, if any, serves meanwhile).
   */
  pending: Map<string, DeployedFunction>;
  /** Each request, as `METHOD path` and its status. */
  requests: string[];
  close(): Promise<void>;
}

const SLUG = /^[A-Za-z][A-Za-z0-9_-]*$/;

function answer(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

function described(fn: DeployedFunction, ref: string) {
  const at = Date.now();
  return {
    id: `${ref}-${fn.slug}`,
    slug: fn.slug,
    name: fn.slug,
    version: fn.version,
    status: "ACTIVE",
    verify_jwt: fn.verifyJwt,
    import_map: fn.importMapPath !== undefined,
    entrypoint_path: fn.entrypointPath,
    import_map_path: fn.importMapPath,
    created_at: at,
    updated_at: at,
  };
}

/** Starts the stand-in for project `projectRef`, reached with `accessToken`. */
export function startManagementApi(
  options: { projectRef: string; accessToken: string },
): ManagementApi {
  const functions = new Map<string, DeployedFunction>();
  const pending = new Map<string, DeployedFunction>();
  const requests: string[] = [];

  async function deploy(req: Request, url: URL): Promise<Response> {
    const slug = url.searchParams.get("slug") ?? "";
    if (!SLUG.test(slug)) return answer(400, { message: `Invalid function slug: ${slug}` });
    let form: FormData;
    try {
      form = await req.formData();
    } catch (error) {
      return answer(400, { message: `malformed multipart body: ${(error as Error).message}` });
    }
    let metadata: {
      entrypoint_path?: string;
      import_map_path?: string;
      verify_jwt?: boolean;
    };
    try {
      metadata = JSON.parse(String(form.get("metadata") ?? ""));
    } catch {
      return answer(400, { message: "metadata is not JSON" });
    }
    if (typeof metadata.entrypoint_path !== "string") {
      return answer(400, { message: "metadata.entrypoint_path is required" });
    }
    const upload: Upload = {
      slug,
      entrypointPath: metadata.entrypoint_path,
      importMapPath: metadata.import_map_path || undefined,
      files: new Map(),
    };
    for (const part of form.getAll("file")) {
      if (typeof part === "string") return answer(400, { message: "a file part is not a file" });
      upload.files.set(part.name, new Uint8Array(await part.arrayBuffer()));
    }
    const bundled = await bundleUpload(upload);
    if (!bundled.ok) {
      return answer(400, { message: `failed to bundle function ${slug}: ${bundled.problem}` });
    }
    const deployed: DeployedFunction = {
      slug,
      version: Math.max(functions.get(slug)?.version ?? 0, pending.get(slug)?.version ?? 0) + 1,
      verifyJwt: metadata.verify_jwt ?? true,
      entrypointPath: upload.entrypointPath,
      importMapPath: upload.importMapPath,
      files: [...upload.files.keys()].sort(),
      bytes: bundled.bytes,
    };
    if (url.searchParams.get("bundleOnly") === "true") pending.set(slug, deployed);
    else functions.set(slug, deployed);
    return answer(201, described(deployed, options.projectRef));
  }

  async function bulkUpdate(req: Request): Promise<Response> {
    const body = await req.json().catch(() => undefined) as { slug?: string }[] | undefined;
    if (!Array.isArray(body)) return answer(400, { message: "expected a list of functions" });
    const updated = [];
    for (const item of body) {
      if (!pending.has(item.slug ?? "") && !functions.has(item.slug ?? "")) {
        return answer(404, { message: `Function ${item.slug} not found` });
      }
    }
    for (const item of body) {
      const slug = item.slug!;
      const fn = pending.get(slug) ?? functions.get(slug)!;
      pending.delete(slug);
      functions.set(slug, fn);
      updated.push(described(fn, options.projectRef));
    }
    return answer(200, { functions: updated });
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.headers.get("authorization") !== `Bearer ${options.accessToken}`) {
      return answer(401, { message: "Unauthorized" });
    }
    const match = /^\/v1\/projects\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!match) return answer(404, { message: "Not Found" });
    if (match[1] !== options.projectRef) {
      return answer(404, { message: `Project ${match[1]} not found` });
    }
    const rest = match[2] ?? "";
    if (req.method === "GET" && rest === "") {
      return answer(200, {
        id: options.projectRef,
        ref: options.projectRef,
        name: "dynamo-supabase-sync",
        organization_id: "local",
        region: "us-east-1",
        status: "ACTIVE_HEALTHY",
        created_at: new Date(0).toISOString(),
      });
    }
    if (req.method === "GET" && rest === "/functions") {
      return answer(200, [...functions.values()].map((f) => described(f, options.projectRef)));
    }
    if (req.method === "POST" && rest === "/functions/deploy") return await deploy(req, url);
    if (req.method === "PUT" && rest === "/functions") return await bulkUpdate(req);
    return answer(404, { message: "Not Found" });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const response = await route(req);
      requests.push(`${req.method} ${new URL(req.url).pathname} ${response.status}`);
      return response;
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    functions,
    pending,
    requests,
    close: () => server.shutdown(),
  };
}
