"""The API's shapes, generated from its OpenAPI document by clients/python/generate.sh: do not edit."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel


class Accepted(BaseModel):
    duplicates: Annotated[
        int,
        Field(
            description='How many of them were already stored (a repeat), and so not sent again.',
            ge=0,
        ),
    ]
    ids: Annotated[list[str], Field(description="Each event's id, in the order sent.")]


class Alive(BaseModel):
    status: Annotated[str, Field(examples=['alive'])]


class Attempt(BaseModel):
    attempt: int
    created_at: AwareDatetime
    duration_ms: int
    error: Annotated[str | None, Field(description='Why it failed, when it did.')] = (
        None
    )
    id: UUID
    response_body: Annotated[
        str, Field(description='The first 4 KiB of the response body.')
    ]
    response_headers: Annotated[
        dict[str, Any], Field(description='A subset of the response headers.')
    ]
    status: Annotated[
        int | None, Field(description='The HTTP status; absent when no answer came.')
    ] = None
    trigger: str


class AttemptView(BaseModel):
    at: AwareDatetime | None = None
    attempt: Annotated[int, Field(ge=0)]
    error: str


class AuditEntry(BaseModel):
    action: Annotated[str, Field(description='What happened, e.g. `files.created`.')]
    actor: Annotated[
        str | None, Field(description='Who acted: `admin`, `system`, a user or a key.')
    ] = None
    id: UUID
    ip: str | None = None
    metadata: Annotated[
        dict[str, Any], Field(description='What the event carried, as it was recorded.')
    ]
    resource_id: str | None = None
    resource_type: str | None = None
    time: Annotated[AwareDatetime, Field(description='When it happened.')]
    user_agent: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; absent on the last.'),
    ] = None


class BatchEntry(BaseModel):
    created: Annotated[
        bool,
        Field(description='False when an idempotency key returned an earlier job.'),
    ]
    id: str


class BatchResponse(BaseModel):
    jobs: Annotated[
        list[BatchEntry], Field(description='One entry per requested job, in order.')
    ]


class BucketView(BaseModel):
    allowed_types: Annotated[
        list[str],
        Field(description='Accepted types and extensions; empty accepts any.'),
    ]
    max_file_size: Annotated[int, Field(description='Bytes.', ge=0)]
    name: str
    public: Annotated[bool, Field(description='Downloads need no credentials.')]


class ChannelCount(BaseModel):
    channel: str
    subscribers: Annotated[int, Field(ge=0)]


class Check(BaseModel):
    error: Annotated[
        str | None,
        Field(
            description='Why it is down, in a few words; the full cause is in the logs.'
        ),
    ] = None
    latency_ms: float
    status: Annotated[str, Field(description='`up` or `down`.')]


class CheckReport(BaseModel):
    error: str | None = None
    error_class: Annotated[
        str | None,
        Field(
            description='Why not: `forbidden` (a private address the SSRF rules refuse), `dns`, `connect`,\n`timeout`, `tls`, `auth`, `database_missing` or `other`.'
        ),
    ] = None
    latency_ms: Annotated[
        int | None, Field(description='Connecting and one query, when it worked.', ge=0)
    ] = None
    ok: bool
    server_version: Annotated[
        str | None, Field(description="The server's version, when it worked.")
    ] = None


class CompleteRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    name: Annotated[
        str | None,
        Field(
            description="The file's name (under the token's prefix); `file` when absent."
        ),
    ] = None
    token: Annotated[
        str | None,
        Field(description='The upload token, when the request is not made with it.'),
    ] = None


class Database(BaseModel):
    created_at: AwareDatetime
    database: str
    has_password: Annotated[bool, Field(description='Whether a password is stored.')]
    host: str
    id: UUID
    name: str
    port: int
    ssl_mode: Annotated[str, Field(description='`disable`, `prefer` or `require`.')]
    updated_at: AwareDatetime
    username: str | None = None


class DatabaseInput(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    database: Annotated[str | None, Field(description='The database name.')] = None
    host: Annotated[str | None, Field(description='A host name or IP address.')] = None
    name: Annotated[str | None, Field(description='1 to 255 characters.')] = None
    password: Annotated[
        str | None, Field(description='Stored sealed, never returned.')
    ] = None
    port: Annotated[int | None, Field(description='1 to 65535; 5432 when absent.')] = (
        None
    )
    ssl_mode: Annotated[
        str | None, Field(description='`disable`, `prefer` (the default) or `require`.')
    ] = None
    username: str | None = None


class DatabasePage(BaseModel):
    databases: list[Database]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; absent on the last.'),
    ] = None


class DatabasePool(BaseModel):
    migrations_applied: Annotated[int, Field(ge=0)]
    migrations_pending: Annotated[int, Field(ge=0)]
    pool_idle: Annotated[int, Field(ge=0)]
    pool_max: Annotated[int, Field(ge=0)]
    pool_size: Annotated[int, Field(ge=0)]


class Deleted(BaseModel):
    deleted: Annotated[int, Field(ge=0)]


class Delivery(BaseModel):
    attempts: int
    created_at: AwareDatetime
    endpoint_id: UUID
    event_id: str
    event_type: str
    id: UUID
    last_error: str | None = None
    last_status: Annotated[
        int | None,
        Field(description="The last answer's HTTP status; absent when none came."),
    ] = None
    next_attempt_at: Annotated[
        AwareDatetime | None,
        Field(description='When the next attempt is due, while pending.'),
    ] = None
    status: Annotated[
        str,
        Field(description='`pending` (an attempt is due), `succeeded` or `failed`.'),
    ]
    trigger: Annotated[
        str,
        Field(
            description='What started the current round: `scheduled`, `replay`, `recover` or `test`.'
        ),
    ]
    updated_at: AwareDatetime


class DeliveryDetail(Delivery):
    attempts: Annotated[
        list[Attempt], Field(description='Every attempt, oldest first.')
    ]


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; absent on the last.'),
    ] = None


class Endpoint(BaseModel):
    consecutive_failures: Annotated[
        int, Field(description='Deliveries in a row that ran out of attempts.')
    ]
    created_at: AwareDatetime
    description: str
    disabled_reason: Annotated[
        str | None,
        Field(
            description='Why it was disabled, when it was: `gone` (a 410), `failing` or `manual`.'
        ),
    ] = None
    enabled: bool
    event_types: Annotated[
        list[str],
        Field(
            description='Patterns of the event types delivered: `user.signup`, `files.*`, `*`.'
        ),
    ]
    failing_since: Annotated[
        AwareDatetime | None,
        Field(
            description='When the current run of failed attempts began; absent while deliveries succeed.'
        ),
    ] = None
    headers: Annotated[dict[str, str], Field(description='Sent with every delivery.')]
    id: UUID
    rate_limit_per_second: int | None = None
    updated_at: AwareDatetime
    url: str


class EndpointInput(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    description: str | None = None
    enabled: bool | None = None
    event_types: Annotated[
        list[str] | None,
        Field(description='At least one pattern: `user.signup`, `files.*` or `*`.'),
    ] = None
    headers: dict[str, str] | None = None
    rate_limit_per_second: Annotated[
        int | None,
        Field(
            description='At most this many deliveries a second; `null` removes the limit.',
            ge=0,
        ),
    ] = None
    url: Annotated[
        str | None,
        Field(
            description='An `https://` (or `http://`) URL; private addresses are refused unless allowed by\n`outbound.allow_hosts` or `outbound.allow_private`.'
        ),
    ] = None


class EndpointList(BaseModel):
    endpoints: list[Endpoint]


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    delay_seconds: Annotated[
        int | None,
        Field(description='Start no sooner than this many seconds from now.'),
    ] = None
    idempotency_key: Annotated[
        str | None,
        Field(
            description='A repeat with the same key within `jobs.idempotency_window_seconds` returns the\nfirst job instead of making another.'
        ),
    ] = None
    kind: Annotated[
        str,
        Field(
            description='The handler to run: a built-in (`http`, `audits`, `deletes`, `mails`, `noop`) or\none a Rust application registered.'
        ),
    ]
    max_attempts: Annotated[
        int | None,
        Field(
            description='Attempts before the job is dead; `jobs.max_attempts` when absent.',
            ge=0,
        ),
    ] = None
    payload: Annotated[
        dict[str, Any] | None,
        Field(
            description="The handler's input; `{}` when absent. Kept as the text it came as, so that\nnumbers beyond 64 bits come back exactly."
        ),
    ] = None
    queue: Annotated[
        str | None,
        Field(
            description="The queue; the kind's own queue when absent (`default` for other kinds)."
        ),
    ] = None
    run_at: Annotated[
        AwareDatetime | None,
        Field(description='Start no sooner than this time (RFC 3339).'),
    ] = None
    timeout_seconds: Annotated[
        int | None,
        Field(
            description='Run time per attempt; `jobs.timeout_seconds` when absent.',
            ge=0,
        ),
    ] = None


class Event(BaseModel):
    data: Annotated[
        dict[str, Any],
        Field(description='Kept and delivered as the JSON text it came as.'),
    ]
    id: Annotated[
        str, Field(description='Unique: a second event with the same id is not stored.')
    ]
    source: Annotated[
        str,
        Field(
            description="Who sent it: `switchyard` for built-in events, the application's name otherwise."
        ),
    ]
    subject: Annotated[
        str | None, Field(description="What it is about, e.g. a file's id.")
    ] = None
    time: AwareDatetime
    type: Annotated[
        str, Field(description='What happened, e.g. `files.created` or `user.signup`.')
    ]


class EventView(Event):
    relayed_at: Annotated[
        AwareDatetime | None,
        Field(
            description='When the relay sent it on; absent while it waits in the outbox.'
        ),
    ] = None


class FileRecord(BaseModel):
    bucket: str
    content_type: Annotated[
        str, Field(description='Judged from the first bytes where they are recognised.')
    ]
    created_at: AwareDatetime
    id: UUID
    name: Annotated[
        str,
        Field(
            description="The client's file name, made safe: no path, no control characters."
        ),
    ]
    sha256: Annotated[
        str, Field(description="Hex SHA-256 of the contents; the download's `ETag`.")
    ]
    size: int


class HubReport(BaseModel):
    at_ms: Annotated[
        int, Field(description='When it reported, in milliseconds since the epoch.')
    ]
    busiest: Annotated[
        list[ChannelCount],
        Field(description='Its busiest channels, with subscribers, most first.'),
    ]
    channels: Annotated[
        int, Field(description='Channels with at least one subscriber here.', ge=0)
    ]
    connections: Annotated[int, Field(description='Open sockets.', ge=0)]
    hub: Annotated[str, Field(description='The process: `service/replica/pid`.')]
    subscriber: Annotated[
        bool,
        Field(
            description='Whether its Redis subscriber is connected (false: it is reconnecting).'
        ),
    ]


class Instance(BaseModel):
    details: Any
    heartbeat_at: AwareDatetime
    id: UUID
    mode: str
    replica: str
    service: str
    started_at: AwareDatetime
    version: str


class JobBatch(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    jobs: Annotated[
        list[EnqueueRequest],
        Field(description='Up to 1000 jobs; all are checked before any is queued.'),
    ]


class JobView(BaseModel):
    attempts: Annotated[int, Field(description='Attempts started so far.', ge=0)]
    created: Annotated[
        bool | None,
        Field(
            description='On enqueue: false when an idempotency key returned an earlier job.'
        ),
    ] = None
    created_at: AwareDatetime | None = None
    errors: Annotated[
        list[AttemptView], Field(description="Every failed attempt's error.")
    ]
    finished_at: AwareDatetime | None = None
    id: str
    kind: str
    last_error: str | None = None
    max_attempts: Annotated[int, Field(ge=0)]
    payload: Annotated[
        dict[str, Any],
        Field(description='As it was enqueued, passed through without re-encoding.'),
    ]
    queue: str
    run_at: Annotated[
        AwareDatetime | None, Field(description='When the job may (next) start.')
    ] = None
    started_at: AwareDatetime | None = None
    state: Annotated[
        str,
        Field(
            description='`scheduled`, `queued`, `running`, `retrying`, `succeeded`, `dead` or `cancelled`;\n`expired` only when a repeated idempotency key names a job whose record is past\n`jobs.retention_seconds`.'
        ),
    ]
    timeout_ms: Annotated[int, Field(ge=0)]


class JobsPage(BaseModel):
    jobs: list[JobView]
    next_cursor: Annotated[
        str | None,
        Field(
            description='Pass as `cursor` for the next page; absent on the last. A position in a list that\nmoves as jobs start and finish, so pages may overlap or skip.'
        ),
    ] = None
    state: str
    total: Annotated[int, Field(description='Jobs in this state now.', ge=0)]


class KeyInput(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    expires_in: Annotated[
        str | None,
        Field(
            description='How long it works: `30m`, `12h` or `90d`, up to ten years; never expires when\nabsent.'
        ),
    ] = None
    name: Annotated[
        str,
        Field(
            description='What the key is for, 1 to 100 characters (`ci`, `laravel backend`).'
        ),
    ]
    scopes: Annotated[
        list[str],
        Field(
            description='The scopes it holds, e.g. `["jobs:read", "metrics:read"]`; `*` is every scope.'
        ),
    ]


class KeyView(BaseModel):
    created_at: AwareDatetime
    created_by: Annotated[
        str, Field(description='`admin` (the root token or the CLI) or `key:<prefix>`.')
    ]
    expires_at: AwareDatetime | None = None
    id: UUID
    last_used_at: Annotated[
        AwareDatetime | None, Field(description='Updated at most once a minute.')
    ] = None
    name: str
    prefix: Annotated[
        str, Field(description='The `<prefix>` of `sy_<prefix>_<secret>`.')
    ]
    revoked_at: AwareDatetime | None = None
    scopes: list[str]


class LastRun(BaseModel):
    enqueued_at: AwareDatetime
    job_id: str
    tick: AwareDatetime


class Minted(KeyView):
    key: Annotated[
        str, Field(description='`sy_<prefix>_<secret>`: shown once, never again.')
    ]


class MintedToken(BaseModel):
    expires_at: Annotated[int, Field(description='Unix seconds.')]
    token: str


class NewEvent(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    channel: Annotated[
        str | None, Field(description='A realtime channel to publish it on as well.')
    ] = None
    data: Annotated[
        dict[str, Any],
        Field(description='Any JSON; `{}` when absent. Delivered exactly as sent.'),
    ]
    id: Annotated[
        str | None,
        Field(
            description='Unique per event, 1 to 128 characters of letters, digits and `._-:`; a repeat of a\nstored id is a no-op. Generated when absent.'
        ),
    ] = None
    source: Annotated[
        str | None,
        Field(
            description="Who sent it, e.g. the application's name; `app` when absent."
        ),
    ] = None
    subject: Annotated[
        str | None, Field(description="What it is about, e.g. a user's id.")
    ] = None
    time: Annotated[
        AwareDatetime | None, Field(description='When it happened; now when absent.')
    ] = None
    type: Annotated[
        str,
        Field(
            description="What happened, e.g. `user.signup`: dot-separated names of letters, digits and\n`_-/:`. Switchyard's own namespaces (`files`, `jobs`, ...) are refused."
        ),
    ]


class PresignedPost(BaseModel):
    fields: dict[str, str]
    url: str


class Problem(BaseModel):
    code: Annotated[str, Field(description='A stable snake_case code, for a program.')]
    detail: Annotated[str, Field(description='What went wrong, for a person.')]
    field: Annotated[
        str | None,
        Field(
            description='The request field at fault, as a dotted path (`payload.url`), for a 422 (and a 413\nthat can tell which field is too large).'
        ),
    ] = None
    request_id: Annotated[
        str | None,
        Field(description="The request's `X-Request-Id`, to find it in the logs."),
    ] = None
    required_scope: Annotated[
        str | None,
        Field(description='For a 403 `insufficient_scope`: the scope the route needs.'),
    ] = None
    status: Annotated[int, Field(ge=0)]
    title: Annotated[str, Field(description='The HTTP status phrase.')]
    type: Annotated[str, Field(description='`urn:switchyard:problem:<code>`.')]


class PublishRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    channel: Annotated[
        str, Field(description='The channel, e.g. `files` or `user.42.messages`.')
    ]
    data: Annotated[
        Any | None, Field(description="Any JSON, delivered as the event's `data`.")
    ] = None
    event: Annotated[
        str, Field(description="The event's name, e.g. `message.created`.")
    ]


class Published(BaseModel):
    channel: str
    offset: Annotated[
        int,
        Field(
            description="The event's offset in its channel; subscribers recover from offsets like it.",
            ge=0,
        ),
    ]


class QueueCounts(BaseModel):
    failed_last_minute: Annotated[
        int, Field(description='Attempts that failed in the last minute.', ge=0)
    ]
    ready: Annotated[int, Field(ge=0)]
    retrying: Annotated[int, Field(ge=0)]
    running: Annotated[int, Field(ge=0)]
    scheduled: Annotated[int, Field(ge=0)]
    succeeded_last_minute: Annotated[
        int, Field(description='Attempts that succeeded in the last minute.', ge=0)
    ]


class FailedItem(RootModel[int]):
    root: Annotated[int, Field(ge=0)]


class SucceededItem(RootModel[int]):
    root: Annotated[int, Field(ge=0)]


class QueueThroughput(BaseModel):
    failed: list[FailedItem]
    name: str
    succeeded: list[SucceededItem]


class QueueView(BaseModel):
    dead: Annotated[int, Field(description='In Postgres, retryable.', ge=0)]
    failed_last_minute: Annotated[
        int, Field(description='Attempts that failed in the last minute.', ge=0)
    ]
    name: str
    ready: Annotated[int, Field(description='Waiting to start.', ge=0)]
    retrying: Annotated[int, Field(description='Waiting out a backoff.', ge=0)]
    running: Annotated[int, Field(description='Leased by a worker.', ge=0)]
    scheduled: Annotated[int, Field(description='Delayed until a later time.', ge=0)]
    succeeded_last_minute: Annotated[
        int, Field(description='Attempts that succeeded in the last minute.', ge=0)
    ]


class RealtimeStats(BaseModel):
    channels: Annotated[
        list[ChannelCount],
        Field(
            description="The busiest channels over every hub (each hub's own busiest, added up), most first."
        ),
    ]
    connections: Annotated[
        int, Field(description='Sockets open on every hub together.', ge=0)
    ]
    hubs: list[HubReport]


class Recovered(BaseModel):
    recovered: Annotated[
        int, Field(description='How many failed deliveries are sent again.', ge=0)
    ]


class Redis(BaseModel):
    connected_clients: Annotated[int | None, Field(ge=0)] = None
    pool_available: Annotated[int, Field(ge=0)]
    pool_max: Annotated[int, Field(ge=0)]
    pool_size: Annotated[int, Field(ge=0)]
    pool_waiting: Annotated[int, Field(ge=0)]
    used_memory_bytes: Annotated[int | None, Field(ge=0)] = None


class Retried(BaseModel):
    retried: Annotated[int, Field(ge=0)]


class RotatedSecret(BaseModel):
    previous_secret_valid_until: Annotated[
        AwareDatetime,
        Field(
            description='Until then, deliveries also carry a signature by the previous secret.'
        ),
    ]
    secret: Annotated[str, Field(description='The new secret, shown this once.')]


class ScheduleChange(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    paused: Annotated[
        bool, Field(description='Pause (its ticks pass without firing) or resume.')
    ]


class ScheduleView(BaseModel):
    catch_up: Annotated[str, Field(description='`none` or `latest`.')]
    cron: str
    enabled: Annotated[
        bool,
        Field(
            description='Enabled in the configuration (`enabled = false` there keeps it off for good).'
        ),
    ]
    kind: str
    last_job_state: Annotated[
        str | None,
        Field(
            description="The state of the last run's job, while the job's record exists."
        ),
    ] = None
    last_run: LastRun | None = None
    name: str
    next_run: Annotated[
        str | None,
        Field(
            description="The next tick, in the schedule's time zone; absent when disabled or paused."
        ),
    ] = None
    next_runs: Annotated[
        list[str],
        Field(
            description="The next five ticks, in the schedule's time zone; empty when disabled or paused."
        ),
    ]
    paused: Annotated[
        bool,
        Field(
            description='Paused at run time: its ticks pass without firing until it is resumed.'
        ),
    ]
    queue: str | None = None
    timezone: str


class Schema(BaseModel):
    pending: Annotated[
        int,
        Field(description='Migrations this release has that the database lacks.', ge=0),
    ]
    status: Annotated[
        str,
        Field(
            description='`current`, or `behind` until `app migrate` applies what is pending.',
            examples=['current'],
        ),
    ]


class SignRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    download: Annotated[
        bool | None,
        Field(
            description='Serve it as an attachment (a download) even when a browser could show it.'
        ),
    ] = None
    expires_in_seconds: Annotated[
        int | None,
        Field(
            description='Lifetime in seconds, up to a week; `storage.signed_url_ttl_seconds` when absent.',
            ge=0,
        ),
    ] = None
    presigned: Annotated[
        bool | None,
        Field(
            description='Also return an S3 presigned URL straight to the bucket (S3 backends only).'
        ),
    ] = None


class SignedUrl(BaseModel):
    expires_at: AwareDatetime
    presigned_url: Annotated[
        str | None, Field(description='The S3 presigned URL, when asked for.')
    ] = None
    url: Annotated[
        str, Field(description='Works without credentials until `expires_at`.')
    ]


class SocketTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    channels: Annotated[
        list[str],
        Field(
            description='Channel names or `*`-suffixed patterns the socket may subscribe to.'
        ),
    ]
    sub: Annotated[
        str, Field(description='Who the socket belongs to (the `sub` claim).')
    ]
    ttl_seconds: Annotated[
        int | None,
        Field(
            description='Lifetime in seconds; `realtime.token_ttl_seconds` when absent, at most a week.',
            ge=0,
        ),
    ] = None


class System(BaseModel):
    cpu_count: Annotated[int, Field(ge=0)]
    load_average: Annotated[
        list[float] | None,
        Field(description='1, 5 and 15 minute load averages of the machine.'),
    ] = None
    mode: str
    pid: Annotated[int, Field(ge=0)]
    replica: str
    rss_bytes: Annotated[
        int | None, Field(description='Resident memory of this process.', ge=0)
    ] = None
    service: str
    uptime_s: Annotated[int, Field(ge=0)]
    version: str


class ThroughputView(BaseModel):
    failed: Annotated[
        list[FailedItem],
        Field(
            description='Attempts that failed per minute, all queues together, oldest first.'
        ),
    ]
    interval_seconds: Annotated[
        int, Field(description='The width of each point: 60.', ge=0)
    ]
    queues: Annotated[
        list[QueueThroughput], Field(description="Every declared queue's points.")
    ]
    succeeded: Annotated[
        list[SucceededItem],
        Field(
            description='Attempts that succeeded per minute, all queues together, oldest first.'
        ),
    ]
    until: Annotated[
        AwareDatetime,
        Field(
            description='When the last point ends (now); point `i` of `n` ends `n - 1 - i` minutes earlier.'
        ),
    ]


class Triggered(BaseModel):
    job_id: str
    schedule: str


class UploadToken(BaseModel):
    bucket: str
    content_types: list[str]
    expires_at: AwareDatetime
    id: Annotated[
        UUID,
        Field(
            description="The token's id; also the id of the file a presigned POST makes."
        ),
    ]
    max_size: Annotated[int, Field(ge=0)]
    name_prefix: str | None = None
    presigned_post: PresignedPost | None = None
    single_use: bool
    token: Annotated[
        str,
        Field(
            description='`Authorization: Bearer <token>` or `?token=<token>` on `upload_url`.'
        ),
    ]
    upload_url: Annotated[
        str,
        Field(
            description='Where a browser posts the file (multipart field `file`, or the raw body with\n`&name=`).'
        ),
    ]


class UploadTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    bucket: Annotated[str, Field(description='A bucket declared in `storage.buckets`.')]
    content_types: Annotated[
        list[str] | None,
        Field(
            description="Media types (`image/png`), families (`image/*`) or extensions (`.pdf`) accepted,\non top of the bucket's own rule; any the bucket accepts when absent."
        ),
    ] = None
    expires_in_seconds: Annotated[int, Field(description='1 to 86,400.', ge=0)]
    max_size: Annotated[
        int | None,
        Field(
            description="Bytes, at most the bucket's `max_file_size` (also the default).",
            ge=0,
        ),
    ] = None
    name_prefix: Annotated[
        str | None,
        Field(
            description="Every file made with the token is named under this (`user-42-`); the client's name\ngets it prepended when it lacks it."
        ),
    ] = None
    single_use: Annotated[
        bool | None, Field(description='The token makes one file, then is refused.')
    ] = None


class BucketList(BaseModel):
    buckets: list[BucketView]


class CreatedEndpoint(Endpoint):
    secret: Annotated[
        str,
        Field(
            description='The Standard Webhooks signing secret (`whsec_…`). Keep it: it is not shown again.'
        ),
    ]


class DeadPage(BaseModel):
    jobs: list[JobView]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; absent on the last.'),
    ] = None


class EventBatch(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    events: Annotated[
        list[NewEvent],
        Field(description='1 to 1000 events; all are checked before any is stored.'),
    ]


class FilePage(BaseModel):
    files: list[FileRecord]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; absent on the last.'),
    ] = None


class HealthReport(BaseModel):
    checks: dict[str, Check]
    details: Annotated[
        dict[str, Any] | None,
        Field(
            description='What the running mode reports about itself (the scheduler: leadership and its\nlast tick).'
        ),
    ] = None
    mode: str
    replica: str
    schema_: Annotated[Schema | None, Field(alias='schema')] = None
    service: str
    status: Annotated[
        str,
        Field(
            description='`healthy` when every check is up, else `degraded`.',
            examples=['healthy'],
        ),
    ]
    uptime_s: Annotated[int, Field(ge=0)]
    version: str


class KeyList(BaseModel):
    keys: list[KeyView]


class Metrics(BaseModel):
    database: DatabasePool
    instances: Annotated[
        list[Instance],
        Field(description='Processes that heartbeated within the last minute.'),
    ]
    queues: Annotated[
        dict[str, QueueCounts],
        Field(
            description='Per-queue counts and last-minute throughput, as `GET /api/v1/queues` gives them.'
        ),
    ]
    redis: Redis
    system: System


class QueueList(BaseModel):
    queues: list[QueueView]


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]
