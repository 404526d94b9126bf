WITH created AS (
    INSERT INTO {state} (id, max_id, seen_id) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING
), state AS (
    -- SKIP LOCKED: while another request refreshes, this one reads the state as it was.
    SELECT covered_until, max_id, seen_id, seen_at FROM {state} WHERE id = 1
    FOR UPDATE SKIP LOCKED
), observed AS (
    SELECT coalesce(max(id), 0) AS newest, coalesce(min(id), 1) AS oldest, now() AS now
    FROM {runs}
), stepped AS (
    -- A first refresh only places covered_until (nothing is summed while max_id is 0);
    -- the calls before it are then summed by id, step by step. Steps are bounded
    -- (NULL: unbounded, for the command), so a request never sums a whole table.
    SELECT
        state.covered_until AS old_until,
        state.max_id AS old_max,
        observed.newest < state.max_id AS shrunk,
        CASE WHEN observed.newest < state.max_id OR state.covered_until >= %(until)s
                 THEN state.covered_until
             WHEN state.covered_until IS NULL THEN %(until)s
             ELSE least(%(until)s, state.covered_until + %(step_hours)s * interval '1 hour')
        END AS new_until,
        CASE WHEN observed.newest < state.max_id OR state.covered_until IS NULL
                 THEN state.max_id
             ELSE least(
                 CASE WHEN %(lag)s = 0 THEN observed.newest
                      WHEN state.seen_at <= observed.now - %(lag)s * interval '1 second'
                          THEN greatest(state.max_id, state.seen_id)
                      ELSE state.max_id END,
                 greatest(state.max_id, observed.oldest - 1) + %(step_ids)s)
        END AS new_max,
        state.seen_id AS old_seen,
        state.seen_at AS old_seen_at,
        state.seen_at IS NULL
            OR state.seen_at <= observed.now - %(lag)s * interval '1 second' AS seen_aged,
        observed.newest,
        observed.now
    FROM state, observed
), plan AS (
    -- A new newest id is observed once every id seen before is adopted: while a bounded
    -- step has adopted only part of them, the rest stay adoptable at the next step
    -- (so catching up a large table is not held to one step per LAG).
    SELECT stepped.*,
        CASE WHEN seen_aged AND (old_seen_at IS NULL OR new_max >= old_seen OR %(lag)s = 0)
             THEN newest ELSE old_seen END AS new_seen,
        CASE WHEN seen_aged AND (old_seen_at IS NULL OR new_max >= old_seen OR %(lag)s = 0)
             THEN now ELSE old_seen_at END AS new_seen_at
    FROM stepped
), fresh AS (
    -- The hours closing now, and the late calls of hours already closed.
    SELECT created_at, site_id, app_type, status, tokens_used, latency_ms, id,
           error_message, alert_status FROM {runs}
    WHERE created_at >= (SELECT old_until FROM plan)
      AND created_at < (SELECT new_until FROM plan)
      AND id <= (SELECT new_max FROM plan)
    UNION ALL
    SELECT created_at, site_id, app_type, status, tokens_used, latency_ms, id,
           error_message, alert_status FROM {runs}
    WHERE id > (SELECT old_max FROM plan) AND id <= (SELECT new_max FROM plan)
      AND created_at < (SELECT old_until FROM plan)
), calls AS (
    INSERT INTO {rollup} AS r (hour, site_id, app_type, calls, successes, failures, tokens,
                               success_tokens, latency_sum, latency_count)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, count(*),
           count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE {failed}),
           coalesce(sum(tokens_used), 0),
           coalesce(sum(tokens_used) FILTER (WHERE status = 'success'), 0),
           coalesce(sum(latency_ms), 0), count(latency_ms)
    FROM fresh GROUP BY 1, 2, 3
    ON CONFLICT (hour, site_id, app_type) DO UPDATE SET
        calls = r.calls + excluded.calls,
        successes = r.successes + excluded.successes,
        failures = r.failures + excluded.failures,
        tokens = r.tokens + excluded.tokens,
        success_tokens = r.success_tokens + excluded.success_tokens,
        latency_sum = r.latency_sum + excluded.latency_sum,
        latency_count = r.latency_count + excluded.latency_count
), latencies AS (
    INSERT INTO {latency} AS l (hour, site_id, bucket, calls, min_ms, max_ms)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, {bucket}, count(*),
           min(latency_ms), max(latency_ms)
    FROM fresh WHERE latency_ms IS NOT NULL GROUP BY 1, 2, 3
    ON CONFLICT (hour, site_id, bucket) DO UPDATE SET
        calls = l.calls + excluded.calls,
        min_ms = least(l.min_ms, excluded.min_ms),
        max_ms = greatest(l.max_ms, excluded.max_ms)
), app_latencies AS (
    INSERT INTO {app_latency} AS l (hour, site_id, app_type, bucket, calls, min_ms, max_ms)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, {bucket}, count(*),
           min(latency_ms), max(latency_ms)
    FROM fresh WHERE latency_ms IS NOT NULL GROUP BY 1, 2, 3, 4
    ON CONFLICT (hour, site_id, app_type, bucket) DO UPDATE SET
        calls = l.calls + excluded.calls,
        min_ms = least(l.min_ms, excluded.min_ms),
        max_ms = greatest(l.max_ms, excluded.max_ms)
), {summary_ctes} saved AS (
    UPDATE {state} SET covered_until = plan.new_until, max_id = plan.new_max,
                       seen_id = plan.new_seen, seen_at = plan.new_seen_at
    FROM plan
    WHERE {state}.id = 1
      AND (plan.old_until, plan.old_max, plan.new_seen)
          IS DISTINCT FROM (plan.new_until, plan.new_max, {state}.seen_id)
)
SELECT new_until, new_max, shrunk FROM plan
UNION ALL
SELECT covered_until, max_id, false FROM {state} WHERE id = 1 AND NOT EXISTS (SELECT FROM plan)
