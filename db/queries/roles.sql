-- name: ListRoles :many
SELECT r.name, r.description,
       coalesce(array_agg(rp.permission ORDER BY rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')::text[] AS permissions
FROM roles r
LEFT JOIN role_permissions rp ON rp.role = r.name
GROUP BY r.name, r.description
ORDER BY r.name;

-- name: ListUserPermissions :many
SELECT DISTINCT rp.permission
FROM user_roles ur
JOIN role_permissions rp ON rp.role = ur.role
WHERE ur.user_id = sqlc.arg(user_id)
ORDER BY rp.permission;

-- name: AddUserRoles :exec
INSERT INTO user_roles (user_id, role) SELECT sqlc.arg(user_id), unnest(sqlc.arg(roles)::text[])
ON CONFLICT DO NOTHING;

-- name: ReplaceUserRoles :exec
-- Makes roles the user's roles, in one statement.
WITH gone AS (DELETE FROM user_roles WHERE user_id = sqlc.arg(user_id) AND role <> ALL (sqlc.arg(roles)::text[]))
INSERT INTO user_roles (user_id, role) SELECT sqlc.arg(user_id), unnest(sqlc.arg(roles)::text[])
ON CONFLICT DO NOTHING;
