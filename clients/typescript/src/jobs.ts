import { type Transport, segment } from "./http.js";
import { orNull } from "./errors.js";
import type {
  BatchEntry,
  DeadPage,
  EnqueueRequest,
  HttpJobPayload,
  Job,
  Retried,
} from "./types.js";

/** Jobs: enqueue, read, cancel, retry, and the dead ones of a queue. */
export class Jobs {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Enqueues a job. A repeat with the same `idempotency_key` returns the first job
   * (`created: false`). Without one, the client makes a key for this call, so that a retry
   * after a lost answer cannot enqueue it twice.
   */
  async enqueue(job: EnqueueRequest, options: { signal?: AbortSignal } = {}): Promise<Job> {
    const key = job.idempotency_key ?? crypto.randomUUID();
    return this.#http.json<Job>({
      method: "POST",
      path: "/api/v1/jobs",
      json: job,
      headers: job.idempotency_key ? {} : { "idempotency-key": key },
      idempotent: true,
      signal: options.signal,
    });
  }

  /**
   * Enqueues up to 1,000 jobs; all are checked before any is queued. Retried after a 503
   * or a lost answer only when every job carries an `idempotency_key`.
   */
  async enqueueBatch(
    jobs: EnqueueRequest[],
    options: { signal?: AbortSignal } = {},
  ): Promise<BatchEntry[]> {
    const reply = await this.#http.json<{ jobs: BatchEntry[] }>({
      method: "POST",
      path: "/api/v1/jobs/batch",
      json: { jobs },
      idempotent: jobs.every((job) => !!job.idempotency_key),
      signal: options.signal,
    });
    return reply.jobs;
  }

  /** Enqueues an `http` job: Switchyard sends the request, signed, when the job runs. */
  async http(
    request: HttpJobPayload,
    options: Omit<EnqueueRequest, "kind" | "payload"> = {},
  ): Promise<Job> {
    return this.enqueue({ ...options, kind: "http", payload: { ...request } });
  }

  /** A job, or `null` when the server has no such job. */
  async get(id: string): Promise<Job | null> {
    return orNull(
      this.#http.json<Job>({ method: "GET", path: `/api/v1/jobs/${segment(id)}`, idempotent: true }),
    );
  }

  /** Cancels a job that has not started (a 409 `conflict` once it has). */
  async cancel(id: string): Promise<Job> {
    return this.#http.json<Job>({
      method: "DELETE",
      path: `/api/v1/jobs/${segment(id)}`,
      idempotent: true,
    });
  }

  /** Queues a dead job again under its own id, with fresh attempts. */
  async retry(id: string): Promise<Job> {
    return this.#http.json<Job>({
      method: "POST",
      path: `/api/v1/jobs/${segment(id)}/retry`,
      idempotent: true,
    });
  }

  /** A page of `queue`'s dead jobs, newest first; pass `next_cursor` back for the next. */
  async dead(queue: string, page: { limit?: number; cursor?: string } = {}): Promise<DeadPage> {
    return this.#http.json<DeadPage>({
      method: "GET",
      path: `/api/v1/queues/${segment(queue)}/dead`,
      query: { limit: page.limit, cursor: page.cursor },
      idempotent: true,
    });
  }

  /** Every dead job of `queue`, page by page. */
  async *allDead(queue: string): AsyncGenerator<Job> {
    let cursor: string | undefined;
    do {
      const page = await this.dead(queue, { limit: 200, cursor });
      yield* page.jobs;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Queues every dead job of `queue` again; returns how many. */
  async retryDead(queue: string): Promise<number> {
    const reply = await this.#http.json<Retried>({
      method: "POST",
      path: `/api/v1/queues/${segment(queue)}/dead/retry`,
      idempotent: true,
    });
    return reply.retried;
  }
}
