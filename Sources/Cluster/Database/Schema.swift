import PostgresNIO

/// The cluster database's tables, as numbered migrations. A database is at the highest version in
/// `schema_version`; opening brings it forward one migration at a time, each in its own transaction
/// under an advisory lock, so agents and clients that start together apply each exactly once.
/// Append new migrations; never change one that has shipped.
public enum Schema {
  struct Migration: Sendable {
    let version: Int
    let name: String
    let statements: [String]
  }

  public static var latestVersion: Int { migrations.last!.version }

  /// Taken by every migration's transaction (any constant the other users of the database do not use).
  static let lockKey: Int64 = 0x766D_6C61_6273_6368

  static let migrations: [Migration] = [
    Migration(
      version: 1, name: "hosts, placement, labs, jobs and steps",
      statements: [
        // A host is one agent's machine and library; `agent` says which agent process holds the
        // name, so a second agent under the same name is refused while the first one is alive.
        """
        CREATE TABLE host (
          name text PRIMARY KEY,
          address text NOT NULL DEFAULT '',
          library text NOT NULL,
          agent text NOT NULL DEFAULT '',
          memory_total bigint NOT NULL DEFAULT 0,
          memory_free bigint NOT NULL DEFAULT 0,
          disk_total bigint NOT NULL DEFAULT 0,
          disk_free bigint NOT NULL DEFAULT 0,
          capabilities jsonb NOT NULL DEFAULT '[]',
          heartbeat_seconds double precision NOT NULL DEFAULT 5 CHECK (heartbeat_seconds > 0),
          registered_at timestamptz NOT NULL DEFAULT now(),
          last_heartbeat timestamptz NOT NULL DEFAULT now(),
          stopped_at timestamptz
        )
        """,
        // Which host's library holds each VM (names compared as NameRules.key compares them).
        """
        CREATE TABLE vm_placement (
          vm_key text PRIMARY KEY,
          vm text NOT NULL,
          host text NOT NULL REFERENCES host (name),
          placed_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE lab (
          name text PRIMARY KEY,
          created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE lab_member (
          lab text NOT NULL REFERENCES lab (name) ON DELETE CASCADE,
          vm_key text NOT NULL,
          PRIMARY KEY (lab, vm_key)
        )
        """,
        """
        CREATE TABLE job (
          id bigserial PRIMARY KEY,
          kind text NOT NULL,
          target text NOT NULL DEFAULT '',
          created_by text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        // A fence token is drawn from here at every claim (and when a lease is taken back), so a
        // newer claim always carries a larger token than any older one.
        "CREATE SEQUENCE fence_token",
        """
        CREATE TABLE job_step (
          id bigserial PRIMARY KEY,
          job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
          host text NOT NULL REFERENCES host (name),
          kind text NOT NULL,
          arguments jsonb NOT NULL DEFAULT '{}',
          state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
          lease_until timestamptz,
          fence bigint NOT NULL DEFAULT 0,
          claimed_by text NOT NULL DEFAULT '',
          attempts integer NOT NULL DEFAULT 0,
          max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
          progress double precision NOT NULL DEFAULT 0,
          result text,
          error text,
          created_at timestamptz NOT NULL DEFAULT now(),
          started_at timestamptz,
          finished_at timestamptz
        )
        """,
      ]),
    Migration(
      version: 2, name: "claim and lease indexes, wake-ups for queued steps",
      statements: [
        "CREATE INDEX job_step_queued ON job_step (host, id) WHERE state = 'queued'",
        "CREATE INDEX job_step_leased ON job_step (lease_until) WHERE state = 'running'",
        "CREATE INDEX job_step_job ON job_step (job_id)",
        // Agents LISTEN on vmlab_steps; the payload is the host whose step became queued (a
        // transaction that queues many steps for one host sends one notification).
        """
        CREATE FUNCTION vmlab_step_queued() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('vmlab_steps', NEW.host);
          RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER job_step_queued AFTER INSERT OR UPDATE OF state ON job_step
          FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION vmlab_step_queued()
        """,
      ]),
    Migration(
      version: 3, name: "lab operations",
      statements: [
        // Lab names are compared as VM names are (`Web` and `web` are one lab).
        "CREATE UNIQUE INDEX lab_name_key ON lab (lower(name))",
        // A lab checkpoint or restore across hosts, as its coordinator's log: `decision` is written
        // (once: only while it is NULL) before any decide step is queued, so whoever finishes the
        // operation after its coordinator died knows what every host must do. `coordinator_seen` is
        // renewed while the coordinator runs; one silent too long has died.
        """
        CREATE TABLE lab_operation (
          id bigserial PRIMARY KEY,
          lab text NOT NULL REFERENCES lab (name) ON DELETE CASCADE,
          kind text NOT NULL CHECK (kind IN ('checkpoint', 'restore')),
          checkpoint text,
          description text NOT NULL DEFAULT '',
          disks_only boolean NOT NULL DEFAULT false,
          decision text CHECK (decision IN ('commit', 'roll-back')),
          reason text,
          created_by text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          coordinator_seen timestamptz NOT NULL DEFAULT now(),
          coordinator_left boolean NOT NULL DEFAULT false,
          decided_at timestamptz,
          finished_at timestamptz,
          prepare_job bigint REFERENCES job (id) ON DELETE SET NULL,
          decide_job bigint REFERENCES job (id) ON DELETE SET NULL
        )
        """,
        // One open operation per lab: a second client's insert finds this one and says busy.
        "CREATE UNIQUE INDEX lab_operation_open ON lab_operation (lab) WHERE finished_at IS NULL",
        // Each host's part: its VMs, its prepare step, the id of the operation its library prepared
        // (written under the prepare step's fence), and its decide step.
        """
        CREATE TABLE lab_operation_host (
          operation bigint NOT NULL REFERENCES lab_operation (id) ON DELETE CASCADE,
          host text NOT NULL REFERENCES host (name),
          vms jsonb NOT NULL,
          prepare_step bigint REFERENCES job_step (id) ON DELETE SET NULL,
          prepared_id bigint,
          decide_step bigint REFERENCES job_step (id) ON DELETE SET NULL,
          PRIMARY KEY (operation, host)
        )
        """,
        "CREATE INDEX lab_operation_host_prepare ON lab_operation_host (prepare_step)",
      ]),
    Migration(
      version: 4, name: "templates",
      statements: [
        // What an agent offers to cluster VMs when it gives them only part of its machine
        // (`vmlab agent --offer-memory/--offer-disk`); NULL: the measured free figures alone.
        "ALTER TABLE host ADD COLUMN memory_offered bigint, ADD COLUMN disk_offered bigint",
        // Which host's library holds which image template, with each file's size and SHA-256
        // (`files`: [{name, size, sha256}]), so other hosts can pull it and verify the copy.
        """
        CREATE TABLE template (
          image text NOT NULL,
          host text NOT NULL REFERENCES host (name) ON DELETE CASCADE,
          files jsonb NOT NULL,
          bytes bigint NOT NULL,
          built text NOT NULL DEFAULT '',
          registered_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (image, host)
        )
        """,
        // One copy of a template from `source` to `target`: requested by the target's agent,
        // sent by the source's agent, done once the target verified and kept it.
        """
        CREATE TABLE template_transfer (
          id bigserial PRIMARY KEY,
          image text NOT NULL,
          source text NOT NULL REFERENCES host (name) ON DELETE CASCADE,
          target text NOT NULL REFERENCES host (name) ON DELETE CASCADE,
          files jsonb NOT NULL,
          state text NOT NULL DEFAULT 'requested'
            CHECK (state IN ('requested', 'sending', 'sent', 'done', 'failed')),
          error text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        // The stream itself: a bounded window of chunks the sender adds and the puller takes
        // away. Unlogged: the bytes are transient (a crash loses them and the pull fails, verified
        // by checksum either way), so they cost no write-ahead log.
        """
        CREATE UNLOGGED TABLE template_chunk (
          transfer bigint NOT NULL REFERENCES template_transfer (id) ON DELETE CASCADE,
          seq integer NOT NULL,
          file integer NOT NULL,
          data bytea NOT NULL,
          PRIMARY KEY (transfer, seq)
        )
        """,
        // Source agents LISTEN on vmlab_transfers; the payload is the source host's name.
        """
        CREATE FUNCTION vmlab_transfer_requested() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('vmlab_transfers', NEW.source);
          RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER template_transfer_requested AFTER INSERT ON template_transfer
          FOR EACH ROW EXECUTE FUNCTION vmlab_transfer_requested()
        """,
      ]),
    Migration(
      version: 5, name: "what each agent's last reconciliation of its library found",
      statements: [
        // Lines an agent found when it compared its library with the placements, for `host list`.
        """
        ALTER TABLE host ADD COLUMN reconciled_at timestamptz,
          ADD COLUMN differences jsonb NOT NULL DEFAULT '[]'
        """
      ]),
    Migration(
      version: 6, name: "the VMs each agent publishes, for scripts to read without a step",
      statements: [
        // One row per VM of a host's library as its agent last published it (`VMSummary` as
        // JSON, with the library's own ids); `summary` NULL: the VM has left the library.
        // `version` is the fence of the step that published it, or a token drawn for a
        // reconciliation: a row is only ever replaced by a publication at least as new.
        """
        CREATE TABLE vm_summary (
          host text NOT NULL REFERENCES host (name) ON DELETE CASCADE,
          vm_key text NOT NULL,
          vm text NOT NULL,
          summary jsonb,
          version bigint NOT NULL,
          published_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (host, vm_key)
        )
        """,
        // The version of the host's last whole publication (its whole library): anything older
        // from that host is refused, so rows it dropped cannot come back.
        "ALTER TABLE host ADD COLUMN published_version bigint NOT NULL DEFAULT 0",
      ]),
  ]
}

/// The channel agents listen on for queued steps.
let stepsChannel = "vmlab_steps"

extension ClusterDatabase {
  /// The schema's version: 0 for an empty database.
  public func schemaVersion() async throws -> Int {
    // One statement, as every command starts with it: a database without the table answers
    // undefined_table (42P01). Not inside a transaction, where that error would end it; within a
    // migration's transaction the table exists already.
    do {
      return try await answer("SELECT coalesce(max(version), 0) FROM schema_version")[0].decode(Int.self)
    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
      return 0
    } catch {
      throw failure(error)
    }
  }

  /// Brings the schema forward to `target` (default: the latest this vmlab knows); returns the
  /// versions before and after. A database newer than this vmlab is refused, untouched.
  @discardableResult
  public func migrate(upTo target: Int = Schema.latestVersion) async throws -> (from: Int, to: Int) {
    // A database already up to date is only read: clients may use a role that cannot create tables.
    let found = try await schemaVersion()
    try checkKnown(found)
    if found >= target { return (found, found) }
    try await transaction { db in
      try await db.rows("SELECT pg_advisory_xact_lock(\(Schema.lockKey))")
      try await db.rows(
        """
        CREATE TABLE IF NOT EXISTS schema_version (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )
        """)
    }
    let start = try await schemaVersion()
    try checkKnown(start)
    for migration in Schema.migrations where migration.version <= target {
      try await transaction { db in
        try await db.rows("SELECT pg_advisory_xact_lock(\(Schema.lockKey))")
        // Another process may have applied it while this one waited for the lock.
        guard try await db.schemaVersion() < migration.version else { return }
        for statement in migration.statements {
          try await db.rows(PostgresQuery(unsafeSQL: statement))
        }
        try await db.rows(
          "INSERT INTO schema_version (version, name) VALUES (\(migration.version), \(migration.name))")
      }
    }
    return (start, try await schemaVersion())
  }

  /// A database newer than this vmlab is refused, untouched.
  private func checkKnown(_ version: Int) throws {
    guard version <= Schema.latestVersion else {
      throw ClusterError(
        .database,
        "the cluster database \(url) is at schema version \(version), newer than this vmlab knows (\(Schema.latestVersion)); upgrade vmlab on this machine"
      )
    }
  }
}
