import { type Transport, segment } from "./http.js";
import type { Schedule, Triggered } from "./types.js";

/** Cron schedules: what is declared, and running one now. */
export class Schedules {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** Every declared schedule with its next runs and its last. */
  async list(): Promise<Schedule[]> {
    const reply = await this.#http.json<{ schedules: Schedule[] }>({
      method: "GET",
      path: "/api/v1/schedules",
      idempotent: true,
    });
    return reply.schedules;
  }

  /** Enqueues a schedule's job now, outside its ticks; returns the job's id. */
  async runNow(name: string): Promise<string> {
    const reply = await this.#http.json<Triggered>({
      method: "POST",
      path: `/api/v1/schedules/${segment(name)}/run`,
      idempotent: false,
    });
    return reply.job_id;
  }
}
