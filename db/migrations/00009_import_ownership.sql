-- +goose Up

-- What an import needs to leave its accounts to their owners: the address
-- the account was imported with (an address changed here since is not the
-- line's account any more, and the line must not make a new one), and when
-- the owner first opened a session (a login): from then on the
-- password is the owner's, and no import replaces it, whatever its format.
ALTER TABLE user_imports ADD COLUMN email text;
ALTER TABLE user_imports ADD COLUMN claimed_at timestamptz;
UPDATE user_imports i SET email = u.email FROM users u WHERE u.id = i.user_id;
CREATE INDEX user_imports_email_idx ON user_imports (email);

-- +goose Down
DROP INDEX user_imports_email_idx;
ALTER TABLE user_imports DROP COLUMN claimed_at;
ALTER TABLE user_imports DROP COLUMN email;
