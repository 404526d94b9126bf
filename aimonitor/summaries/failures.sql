-- Failure groups per hour (aimonitor/summaries/failures.py). Sections are named by
-- "-- name:" lines; {placeholders} are filled in by the module, %(params)s by the driver.

-- name: refresh
-- CTEs of aimonitor.rollup's refresh statement, over its "fresh" calls (the hours
-- closing now and the late calls): each failure's signature is computed once, here.
fresh_failures AS (
    SELECT created_at, id, site_id, app_type, status, {signature} AS signature
    FROM fresh WHERE {failed}
), failure_groups AS (
    INSERT INTO {failure_rollup} AS f (hour, site_id, app_type, status, signature, calls,
                                       first_seen, last_seen, newest_id)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, status, signature,
           count(*), min(created_at), max(created_at),
           (array_agg(id ORDER BY created_at DESC, id DESC))[1]
    FROM fresh_failures GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (hour, site_id, app_type, status, signature) DO UPDATE SET
        calls = f.calls + excluded.calls,
        first_seen = least(f.first_seen, excluded.first_seen),
        last_seen = greatest(f.last_seen, excluded.last_seen),
        newest_id = CASE WHEN (excluded.last_seen, excluded.newest_id) > (f.last_seen, f.newest_id)
                         THEN excluded.newest_id ELSE f.newest_id END
), failure_calls AS (
    INSERT INTO {failure_call} (created_at, run_id, group_hash)
    SELECT created_at, id, {group_hash} FROM fresh_failures
    ON CONFLICT (created_at, run_id) DO NOTHING
),

-- name: summed
-- A window's closed hours: the groups per hour and site, as summed.
SELECT app_type, status, signature, site_id, hour, calls, first_seen, last_seen, newest_id
FROM {failure_rollup}
WHERE hour >= %(a)s AND hour < %(b)s {filters}

-- name: raw
-- The raw failures of a window's open edges ({late}: or its late calls), grouped alike.
SELECT app_type, status, signature, site_id, date_trunc('hour', created_at, %(zone)s),
       count(*), min(created_at), max(created_at),
       (array_agg(id ORDER BY created_at DESC, id DESC))[1]
FROM (SELECT id, app_type, status, site_id, created_at, {signature} AS signature
      FROM {runs}
      WHERE {failed} AND created_at >= %(a)s AND created_at < %(b)s {late} {filters}) f
GROUP BY 1, 2, 3, 4, 5

-- name: summed_pending
-- The pending alerts of closed hours by group: the pending-alerts index joined with each
-- summed failure's group (no signature computed).
SELECT c.group_hash, count(*)
FROM {runs} r JOIN {failure_call} c ON c.created_at = r.created_at AND c.run_id = r.id
WHERE r.status IN ('failed', 'timeout', 'circuit_open')
  AND (r.alert_status IS NULL OR r.alert_status = 'pending')
  AND r.created_at >= %(a)s AND r.created_at < %(b)s AND r.id <= %(planned_max)s
  AND c.created_at >= %(a)s AND c.created_at < %(b)s {site_filter}
GROUP BY 1

-- name: raw_pending
-- The pending alerts of the open edges (or the late calls), their group computed.
SELECT {group_hash}, count(*)
FROM (SELECT app_type, status, {signature} AS signature FROM {runs}
      WHERE status IN ('failed', 'timeout', 'circuit_open')
        AND (alert_status IS NULL OR alert_status = 'pending')
        AND created_at >= %(a)s AND created_at < %(b)s {late} {site_filter}) f
GROUP BY 1

-- name: groups
-- The window's groups from the parts above: largest first, then the one seen last; the
-- newest message read by id, the pending count joined by group hash.
WITH parts (app_type, status, signature, site_id, hour, calls, first_seen, last_seen,
            newest_id) AS (
    {failures}
), groups AS (
    SELECT app_type, status, signature, sum(calls)::bigint AS count,
           array_agg(DISTINCT site_id ORDER BY site_id) AS sites,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen,
           (array_agg(newest_id ORDER BY last_seen DESC, newest_id DESC))[1] AS newest_id
    FROM parts GROUP BY app_type, status, signature
    ORDER BY count DESC, last_seen DESC, app_type, status, signature
    LIMIT %(limit)s
), hourly AS (
    SELECT app_type, status, signature, array_agg(hour ORDER BY hour) AS hours,
           array_agg(n ORDER BY hour) AS counts
    FROM (SELECT app_type, status, signature, hour, sum(calls)::bigint AS n
          FROM parts GROUP BY 1, 2, 3, 4) per_hour
    GROUP BY app_type, status, signature
), pending (group_hash, n) AS (
    SELECT group_hash, sum(n)::bigint
    FROM ({pending}) p (group_hash, n) GROUP BY group_hash
)
SELECT g.app_type, g.status, g.signature, g.count, coalesce(p.n, 0), g.sites, g.first_seen,
       g.last_seen,
       (SELECT r.error_message FROM {runs} r
        WHERE r.id = g.newest_id AND r.created_at = g.last_seen),
       h.hours, h.counts
FROM groups g
JOIN hourly h USING (app_type, status, signature)
LEFT JOIN pending p ON p.group_hash = {group_hash_of_g}
ORDER BY g.count DESC, g.last_seen DESC, g.app_type, g.status, g.signature
