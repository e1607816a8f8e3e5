-- +goose Up

-- An account as lists and administration show it: its roles, and never its
-- password hash. The one place the roles of a user are aggregated.
CREATE VIEW user_profiles AS
SELECT u.id, u.email, u.name, u.email_verified_at, u.disabled_at, u.deleted_at, u.token_version,
       u.created_at, u.updated_at,
       ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u;

-- +goose Down
DROP VIEW user_profiles;
