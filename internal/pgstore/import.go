package pgstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/userimport"
)

var _ userimport.Store = (*Store)(nil)

// errRollback ends a dry run's transaction after its work.
var errRollback = errors.New("dry run: roll back")

// RolePermissions maps each role to the permissions it grants.
func (s *Store) RolePermissions(ctx context.Context) (map[string][]string, error) {
	rows, err := s.q.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Permissions
	}
	return out, nil
}

// importRow is an account to create, as ImportNewUsers reads it
// (jsonb_to_recordset): one statement creates a whole batch.
type importRow struct {
	ID              uuid.UUID  `json:"id"`
	Email           string     `json:"email"`
	Name            *string    `json:"name"`
	PasswordHash    string     `json:"password_hash"`
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	DisabledAt      *time.Time `json:"disabled_at"`
	DeletedAt       *time.Time `json:"deleted_at"`
	CreatedAt       time.Time  `json:"created_at"`
	ExternalID      *string    `json:"external_id"`
	Roles           []string   `json:"roles"`
	LineDigest      string     `json:"line_digest"`
	HashDigest      string     `json:"hash_digest"`
}

// ImportBatch runs a batch of imported accounts in one transaction: it
// locks the accounts the lines may be, lets b.Decide choose for each,
// creates the new ones in one statement, writes the updates, and records
// the batch's audit event and invitations with them.
func (s *Store) ImportBatch(ctx context.Context, b userimport.Batch) ([]userimport.Outcome, map[uuid.UUID]int64, error) {
	var out []userimport.Outcome
	var versions map[uuid.UUID]int64
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		out, versions = make([]userimport.Outcome, len(b.Accounts)), map[uuid.UUID]int64{}
		if len(b.NewRoles) > 0 {
			if err := q.CreateRoles(ctx, b.NewRoles); err != nil {
				return fmt.Errorf("create roles: %w", err)
			}
		}
		found, err := s.importMatches(ctx, q, b.Accounts)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		var create []importRow
		var createdAt []int // index in b.Accounts of each row of create
		ids := map[uuid.UUID]bool{}
		externals := map[string]bool{}
		var mails []account.Mail
		var events []account.Event
		for i, a := range b.Accounts {
			d := b.Decide(a, found[i])
			out[i] = userimport.Outcome{Line: a.Line, Result: d.Result, Reason: d.Reason, ID: d.Target}
			switch d.Result {
			case userimport.Created:
				// One statement creates the batch: a second row with an id or
				// external id of the batch would make it skip one of the two
				// at random, so the later line is refused here.
				if ids[a.ID] || a.ExternalID != nil && externals[*a.ExternalID] {
					out[i] = userimport.Outcome{Line: a.Line, Result: userimport.Refused, Reason: "the id or external_id is an earlier line's"}
					continue
				}
				ids[a.ID] = true
				if a.ExternalID != nil {
					externals[*a.ExternalID] = true
				}
				create, createdAt = append(create, newImportRow(a, now)), append(createdAt, i)
			case userimport.Updated:
				v, err := importUpdate(ctx, tx, a, d)
				if errors.Is(err, errTaken) {
					out[i] = userimport.Outcome{Line: a.Line, Result: userimport.Refused, Reason: "external_id belongs to another account"}
					continue
				}
				if err != nil {
					return err
				}
				if v > 0 {
					versions[d.Target] = v
				}
				events = append(events, d.Events...)
			case userimport.Unchanged, userimport.Skipped, userimport.Refused:
				// nothing to write
			}
		}
		if len(create) > 0 {
			rows, err := json.Marshal(create)
			if err != nil {
				return fmt.Errorf("encode accounts: %w", err)
			}
			ids, err := q.ImportNewUsers(ctx, rows)
			if err != nil {
				return fmt.Errorf("create accounts: %w", err)
			}
			made := make(map[uuid.UUID]bool, len(ids))
			for _, id := range ids {
				made[id] = true
			}
			for _, i := range createdAt {
				a := b.Accounts[i]
				if !made[a.ID] {
					out[i].Result, out[i].Reason = userimport.Refused, "the id, address or external_id is another account's"
					continue
				}
				out[i].ID = a.ID
				mails = append(mails, b.Invite(a)...)
			}
		}
		if e := b.Event(out); e != nil {
			events = append(events, *e)
		}
		if err := s.record(ctx, tx, q, events, mails); err != nil {
			return err
		}
		if b.Rollback {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	if err != nil {
		return nil, nil, err
	}
	return out, versions, nil
}

// importMatches finds, and locks, the accounts each line may be: those
// with its id or its address.
func (s *Store) importMatches(ctx context.Context, q *db.Queries, accounts []userimport.Account) ([][]userimport.Existing, error) {
	var ids []uuid.UUID
	emails := make([]string, 0, len(accounts))
	for _, a := range accounts {
		emails = append(emails, a.Email)
		if a.GivenID {
			ids = append(ids, a.ID)
		}
	}
	rows, err := q.ImportMatches(ctx, db.ImportMatchesParams{Ids: ids, Emails: emails})
	if err != nil {
		return nil, fmt.Errorf("find imported accounts: %w", err)
	}
	byEmail := map[string][]userimport.Existing{}
	byID := map[uuid.UUID]userimport.Existing{}
	for _, r := range rows {
		slices.Sort(r.Roles) // in Go's order, as a line's, whatever the database's collation
		e := userimport.Existing{
			ID: r.ID, Email: r.Email, Deleted: r.DeletedAt != nil, LineDigest: r.LineDigest, HashDigest: r.HashDigest,
			HoldsImportedHash: r.HoldsImportedHash, Name: r.Name, Verified: r.EmailVerifiedAt != nil, Disabled: r.DisabledAt != nil,
			ExternalID: r.ExternalID, Roles: r.Roles, Permissions: r.Permissions,
		}
		byEmail[r.Email] = append(byEmail[r.Email], e)
		if r.ImportedEmail != nil && *r.ImportedEmail != r.Email {
			// imported with an address changed here since
			e.ImportedEmail = *r.ImportedEmail
			byEmail[e.ImportedEmail] = append(byEmail[e.ImportedEmail], e)
		}
		byID[r.ID] = e
	}
	found := make([][]userimport.Existing, len(accounts))
	for i, a := range accounts {
		found[i] = byEmail[a.Email]
		if e, ok := byID[a.ID]; ok && a.GivenID && e.Email != a.Email {
			found[i] = append(found[i], e)
		}
	}
	return found, nil
}

func newImportRow(a userimport.Account, now time.Time) importRow {
	r := importRow{
		ID: a.ID, Email: a.Email, Name: a.Name, PasswordHash: a.PasswordHash, CreatedAt: now, ExternalID: a.ExternalID,
		Roles: a.Roles, LineDigest: hex.EncodeToString(a.LineDigest[:]), HashDigest: hex.EncodeToString(a.HashDigest[:]),
	}
	if a.CreatedAt != nil {
		r.CreatedAt = *a.CreatedAt
	}
	if a.Verified {
		at := r.CreatedAt // verified in the old system; when is not known
		r.EmailVerifiedAt = &at
	}
	if a.Disabled {
		r.DisabledAt = &now
	}
	if a.Deleted {
		r.DeletedAt = &now
	}
	return r
}

// errTaken is an update refused by a unique index (the external id).
var errTaken = errors.New("taken")

// importUpdate writes a line over an existing account, in a savepoint: a
// line refused by a unique index leaves the rest of the batch alone. It
// returns the account's new token version when it ended its sessions.
func importUpdate(ctx context.Context, tx pgx.Tx, a userimport.Account, d userimport.Decision) (int64, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, classify(fmt.Errorf("savepoint: %w", err))
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }()
	q := db.New(sp)
	var hash *string
	if d.SetHash {
		hash = &a.PasswordHash
	}
	v, err := q.ImportUpdateUser(ctx, db.ImportUpdateUserParams{
		ID: d.Target, Name: a.Name, Verified: a.Verified, Disabled: a.Disabled, Deleted: a.Deleted,
		ExternalID: a.ExternalID, PasswordHash: hash, EndSessions: d.EndSessions,
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return 0, errTaken
	}
	if err != nil {
		return 0, classify(fmt.Errorf("update imported account: %w", err))
	}
	if err := q.ReplaceUserRoles(ctx, db.ReplaceUserRolesParams{UserID: d.Target, Roles: a.Roles}); err != nil {
		return 0, classify(fmt.Errorf("replace roles: %w", err))
	}
	if err := q.RecordImport(ctx, db.RecordImportParams{UserID: d.Target, LineDigest: a.LineDigest[:], HashDigest: a.HashDigest[:], Email: &a.Email, SetHash: d.SetHash}); err != nil {
		return 0, classify(fmt.Errorf("record import: %w", err))
	}
	if d.EndSessions {
		if err := endSessions(ctx, q, d.Target, "imported"); err != nil {
			return 0, classify(err)
		}
	}
	if err := sp.Commit(ctx); err != nil {
		return 0, classify(fmt.Errorf("release savepoint: %w", err))
	}
	if !d.EndSessions {
		return 0, nil
	}
	return v, nil
}

// LegacyHashes counts the live accounts by the format of their password
// hash, argon2id left out: imported hashes not yet replaced at a login.
// password.FormatNone counts the accounts without a password.
func (s *Store) LegacyHashes(ctx context.Context) (map[string]int64, error) {
	rows, err := s.q.CountLegacyHashes(ctx)
	if err != nil {
		return nil, fmt.Errorf("count legacy hashes: %w", err)
	}
	out := make(map[string]int64, len(rows)+1)
	for _, r := range rows {
		out[r.Format] = r.Accounts
	}
	n, err := s.q.CountPasswordless(ctx)
	if err != nil {
		return nil, fmt.Errorf("count accounts without a password: %w", err)
	}
	out[password.FormatNone] = n
	return out, nil
}

// maxLegacyCounted bounds the legacy-hash count of a metrics scrape, as
// QueuedMails does the outbox's.
const maxLegacyCounted = 10_000_000

// CountLegacyHashes counts the live accounts on a hash other than argon2id
// (users_legacy_hash_idx), up to ten million: the metric of how many
// imported hashes remain.
func (s *Store) CountLegacyHashes(ctx context.Context) (int64, error) {
	n, err := s.q.CountLegacyAccounts(ctx, maxLegacyCounted)
	if err != nil {
		return 0, fmt.Errorf("count legacy hashes: %w", err)
	}
	return n, nil
}
