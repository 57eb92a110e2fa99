/**
 * The one error the client throws: the API's problem+json document (RFC 9457) as fields,
 * or, when no answer came (the server could not be reached), status 0 with code
 * `connection_error`.
 */
export class SwitchyardError extends Error {
  /** The HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** A stable snake_case code, for a program (`validation_failed`, `not_found`, ...). */
  readonly code: string;
  /** What went wrong, for a person. */
  readonly detail: string;
  /** The request field at fault, as a dotted path (`payload.url`), on a 422. */
  readonly field: string | undefined;
  /** The request's `X-Request-Id`, to find it in the server's logs. */
  readonly requestId: string | undefined;
  /** For a 403 `insufficient_scope`: the scope the route needs. */
  readonly requiredScope: string | undefined;
  /** Seconds the server asked to wait before a retry (`Retry-After`), if it did. */
  readonly retryAfter: number | undefined;

  constructor(fields: {
    status: number;
    code: string;
    detail: string;
    field?: string | undefined;
    requestId?: string | undefined;
    requiredScope?: string | undefined;
    retryAfter?: number | undefined;
    cause?: unknown;
  }) {
    super(
      fields.field ? `${fields.detail} (${fields.field})` : fields.detail,
      fields.cause === undefined ? undefined : { cause: fields.cause },
    );
    this.name = "SwitchyardError";
    this.status = fields.status;
    this.code = fields.code;
    this.detail = fields.detail;
    this.field = fields.field;
    this.requestId = fields.requestId;
    this.requiredScope = fields.requiredScope;
    this.retryAfter = fields.retryAfter;
  }

  /** Whether asking again later may succeed: the server was unreachable or unavailable. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 503;
  }
}

/** Reads an error response: a problem document when it is one, else what the status says. */
export async function errorFrom(response: Response): Promise<SwitchyardError> {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  const text = await response.text().catch(() => "");
  let problem: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      problem = parsed as Record<string, unknown>;
    }
  } catch {
    problem = undefined;
  }
  const string = (key: string): string | undefined =>
    typeof problem?.[key] === "string" ? (problem[key] as string) : undefined;
  return new SwitchyardError({
    status: response.status,
    code: string("code") ?? `http_${response.status}`,
    detail: string("detail") ?? (text.slice(0, 200) || response.statusText || `HTTP ${response.status}`),
    field: string("field"),
    requestId: string("request_id") ?? requestId,
    requiredScope: string("required_scope"),
    retryAfter,
  });
}

/** `Retry-After` in seconds: a number of seconds or an HTTP date. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

/** `null` for a 404, the value otherwise. */
export async function orNull<T>(pending: Promise<T>): Promise<T | null> {
  try {
    return await pending;
  } catch (error) {
    if (error instanceof SwitchyardError && error.status === 404) return null;
    throw error;
  }
}
