WITH RECURSIVE pairs(site_id, app_type) AS (
    SELECT sites.site_id,
           (SELECT r.app_type FROM {table} r WHERE r.site_id = sites.site_id
            ORDER BY r.app_type LIMIT 1)
    FROM unnest(%s::bigint[]) AS sites(site_id)
    UNION ALL
    SELECT pairs.site_id,
           (SELECT r.app_type FROM {table} r
            WHERE r.site_id = pairs.site_id AND r.app_type > pairs.app_type
            ORDER BY r.app_type LIMIT 1)
    FROM pairs WHERE pairs.app_type IS NOT NULL
)
SELECT DISTINCT ON (newest.app_type) newest.app_type, newest.status, newest.created_at
FROM pairs
CROSS JOIN LATERAL (
    SELECT r.app_type, r.status, r.created_at, r.id FROM {table} r
    WHERE r.site_id = pairs.site_id AND r.app_type = pairs.app_type
    ORDER BY r.created_at DESC LIMIT 1
) newest
WHERE pairs.app_type IS NOT NULL
ORDER BY newest.app_type, newest.created_at DESC, newest.id DESC
