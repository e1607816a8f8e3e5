package userimport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
)

// Result is what became of one line.
type Result string

// Results of a line.
const (
	Created   Result = "created"
	Updated   Result = "updated"
	Unchanged Result = "unchanged" // imported before, identical
	Skipped   Result = "skipped"   // the account exists and differs; Update was not asked for
	Refused   Result = "refused"   // invalid, or in conflict with another account
)

// Outcome is one line's result; Reason says why for Skipped and Refused.
type Outcome struct {
	Line   int
	Result Result
	Reason string
	ID     uuid.UUID // the account's, unless Refused
}

// Counts sums the results of an import.
type Counts struct {
	Created, Updated, Unchanged, Skipped, Refused int
}

// Add counts one outcome.
func (c *Counts) Add(r Result) {
	switch r {
	case Created:
		c.Created++
	case Updated:
		c.Updated++
	case Unchanged:
		c.Unchanged++
	case Skipped:
		c.Skipped++
	case Refused:
		c.Refused++
	}
}

// Lines is how many lines were read.
func (c Counts) Lines() int { return c.Created + c.Updated + c.Unchanged + c.Skipped + c.Refused }

// Options of an import.
type Options struct {
	// Update writes a changed line over the account with its address;
	// without it the line is skipped.
	Update bool
	// Invite mails every account created without a password a link to
	// choose one.
	Invite bool
	// DryRun does everything, then rolls each batch back: the report is the
	// one the import would give, and nothing is written or mailed.
	DryRun bool
	// CreateRoles creates the roles lines name that do not exist.
	CreateRoles bool
	// Resume skips the lines before this one (1-based), to continue an
	// import that stopped.
	Resume int
	// Actor is who imports (the API's caller), nil for the command: it may
	// grant only roles whose permissions it holds, and update only accounts
	// holding no permission it lacks (the rules of user management).
	Actor *account.Principal
	// Client is where the request came from, for the audit log.
	Client account.Client
	// Source names the way in, for the audit log: "cli" or "api".
	Source string
}

// Existing is an account a line may be, as the store found it.
type Existing struct {
	ID         uuid.UUID
	Email      string
	Deleted    bool
	LineDigest []byte // of its last import; nil if never imported
	HashDigest []byte
	// ImportedEmail is the address of its last import.
	ImportedEmail string
	// HoldsImportedHash: the account's password hash is still the one an
	// import gave it, and its owner has not logged in.
	HoldsImportedHash bool
	Name              *string
	Verified          bool
	Disabled          bool
	ExternalID        *string
	Roles             []string // sorted
	Permissions       []string // what its roles grant
}

// Decision is what to do with one account of a batch.
type Decision struct {
	Result Result // Created (to insert), Updated, Unchanged, Skipped or Refused
	Reason string
	// Target is the existing account an Updated line writes over.
	Target uuid.UUID
	// SetHash writes the line's password hash (Updated).
	SetHash bool
	// EndSessions ends every session of the target (Updated: disabled,
	// deleted, new roles or a new password).
	EndSessions bool
	// Events are the audit events of an Updated account: what changed.
	Events []account.Event
}

// Batch is lines to import in one transaction.
type Batch struct {
	Accounts []Account
	// NewRoles are roles to create first.
	NewRoles []string
	// Decide chooses what to do with each account, given the existing
	// accounts with its id or address (the store locks them first).
	Decide func(Account, []Existing) Decision
	// Invite mails for each account created (if any).
	Invite func(Account) []account.Mail
	// Event is the batch's audit event, given its outcomes; recorded when
	// the batch wrote something.
	Event func([]Outcome) *account.Event
	// Rollback runs the batch and rolls it back (a dry run).
	Rollback bool
}

// Store writes batches of imported accounts.
type Store interface {
	// RolePermissions maps each role that exists to the permissions it grants.
	RolePermissions(ctx context.Context) (map[string][]string, error)
	// ImportBatch runs a batch in one transaction and returns one outcome
	// per account, in order, and the token versions of the accounts whose
	// sessions it ended.
	ImportBatch(ctx context.Context, b Batch) ([]Outcome, map[uuid.UUID]int64, error)
}

// Revoker spreads the revocations of an import's updates to every instance.
type Revoker interface {
	PublishUserRevocation(ctx context.Context, id uuid.UUID, version int64)
}

// BatchSize is how many lines go into one transaction: large enough that a
// million lines take minutes, small enough that a batch holds its locks
// for a moment only.
const BatchSize = 500

// Service imports accounts.
type Service struct {
	store      Store
	revoker    Revoker
	allowLocal bool
	now        func() time.Time
}

// NewService returns an import service; allowLocal accepts addresses at
// local domains (development).
func NewService(s Store, r Revoker, allowLocal bool) *Service {
	return &Service{store: s, revoker: r, allowLocal: allowLocal, now: time.Now}
}

// run is one import: the rules, the addresses and ids seen so far, the
// batch being filled and the counts.
type run struct {
	s     *Service
	o     Options
	rules Rules
	seed  maphash.Seed
	// emails maps the keyed hash of each normalised address seen to its
	// first line: about 25 bytes an address, the one part of an import
	// that grows with the file. Duplicate ids and external ids are not
	// tracked here: the store refuses a second one like any taken one.
	emails  map[uint64]int32
	batch   []Account
	pending []Outcome // the batch's lines refused before the store, in order with it
	counts  Counts
	report  func(Outcome)
}

func (s *Service) newRun(ctx context.Context, o Options, report func(Outcome)) (*run, error) {
	all, err := s.store.RolePermissions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	roles := make(map[string]bool, len(all))
	for n := range all {
		roles[n] = true
	}
	var grantable func(string) bool
	if p := o.Actor; p != nil {
		grantable = func(role string) bool { return p.Has(all[role]...) }
	}
	return &run{
		s: s, o: o, seed: maphash.MakeSeed(), emails: map[uint64]int32{}, report: report,
		rules: Rules{Roles: roles, Grantable: grantable, CreateRoles: o.CreateRoles, AllowLocalEmailDomains: s.allowLocal, Now: s.now()},
	}, nil
}

// Import reads JSON Lines from r and imports them in batches. report gets
// every line's outcome (in order) once its batch is done; progress, when
// set, gets the counts after each batch. A line that cannot be imported is
// reported and the others go on; an error stops the import (the batches
// done stay done: --resume continues after the last one reported).
func (s *Service) Import(ctx context.Context, r io.Reader, o Options, report func(Outcome), progress func(Counts)) (Counts, error) {
	ru, err := s.newRun(ctx, o, report)
	if err != nil {
		return Counts{}, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, long, err := readLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ru.counts, fmt.Errorf("read line %d: %w", n, err)
		}
		switch {
		case n < o.Resume:
			continue
		case long:
			ru.refuse(n, fmt.Sprintf("line longer than %d bytes", MaxLineBytes))
		case len(bytes.TrimSpace(line)) == 0:
			continue // a blank line is no account (and keeps its number)
		default:
			if l, err := Decode(line); err != nil {
				ru.refuse(n, err.Error())
			} else {
				ru.add(n, l)
			}
		}
		if len(ru.pending) >= BatchSize {
			if err := ru.flush(ctx); err != nil {
				return ru.counts, err
			}
			if progress != nil {
				progress(ru.counts)
			}
		}
	}
	if err := ru.flush(ctx); err != nil {
		return ru.counts, err
	}
	return ru.counts, nil
}

// Items imports accounts given as a list (the API): the same checks and
// outcomes, Line being the item's index.
func (s *Service) Items(ctx context.Context, lines []Line, o Options) ([]Outcome, Counts, error) {
	var out []Outcome
	ru, err := s.newRun(ctx, o, func(oc Outcome) { out = append(out, oc) })
	if err != nil {
		return nil, Counts{}, err
	}
	for i, l := range lines {
		ru.add(i, l)
	}
	if err := ru.flush(ctx); err != nil {
		return nil, Counts{}, err
	}
	return out, ru.counts, nil
}

// readLine reads one line, without its end; long reports a line above
// MaxLineBytes, whose bytes are dropped up to its end.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if !long {
			buf = append(buf, chunk...)
			if len(buf) > MaxLineBytes {
				long, buf = true, nil
			}
		}
		if err != nil || !isPrefix {
			return buf, long, err
		}
	}
}

func (ru *run) refuse(n int, reason string) {
	ru.pending = append(ru.pending, Outcome{Line: n, Result: Refused, Reason: reason})
}

// add validates a line and puts it in the batch, or refuses it.
func (ru *run) add(n int, l Line) {
	a, err := Validate(l, ru.rules)
	if err != nil {
		ru.refuse(n, err.Error())
		return
	}
	a.Line = n
	k := maphash.String(ru.seed, a.Email)
	if first, ok := ru.emails[k]; ok {
		ru.refuse(n, fmt.Sprintf("duplicate email: line %d has the same address (after normalisation)", first))
		return
	}
	ru.emails[k] = int32(n) //nolint:gosec // a file of 2^31 lines is not an import
	ru.batch = append(ru.batch, a)
	ru.pending = append(ru.pending, Outcome{Line: n}) // its place; the store fills it
}

// flush imports the batch and reports every pending line in order.
func (ru *run) flush(ctx context.Context) error {
	var outcomes []Outcome
	if len(ru.batch) > 0 {
		var newRoles []string
		for _, a := range ru.batch {
			for _, r := range a.Roles {
				if !ru.rules.Roles[r] && !slices.Contains(newRoles, r) {
					newRoles = append(newRoles, r)
				}
			}
		}
		var versions map[uuid.UUID]int64
		var err error
		outcomes, versions, err = ru.s.store.ImportBatch(ctx, Batch{
			Accounts: ru.batch, NewRoles: newRoles, Decide: ru.decide, Invite: ru.invite, Event: ru.event, Rollback: ru.o.DryRun,
		})
		if err != nil {
			return fmt.Errorf("import lines %d to %d: %w", ru.batch[0].Line, ru.batch[len(ru.batch)-1].Line, err)
		}
		if !ru.o.DryRun {
			for _, r := range newRoles {
				ru.rules.Roles[r] = true
			}
			for id, v := range versions {
				ru.s.revoker.PublishUserRevocation(ctx, id, v)
			}
		}
	}
	i := 0
	for _, p := range ru.pending {
		if p.Result == "" {
			p = outcomes[i]
			i++
		}
		ru.counts.Add(p.Result)
		if ru.report != nil {
			ru.report(p)
		}
	}
	ru.batch, ru.pending = ru.batch[:0], ru.pending[:0]
	return nil
}

// decide is the rule of an import: which account a line is, and whether
// it is created, left alone or written over. An account an import made
// stays the line's account when it was deleted or its address changed
// here: the line never makes it anew.
func (ru *run) decide(a Account, found []Existing) Decision {
	var live, deleted, moved, byID *Existing
	for i := range found {
		e := &found[i]
		imported := e.LineDigest != nil
		switch {
		case e.Email == a.Email && !e.Deleted:
			live = e // one live account has an address
		case e.Email == a.Email && imported && deleted == nil:
			deleted = e
		case e.Email != a.Email && imported && e.ImportedEmail == a.Email && moved == nil:
			moved = e
		}
		if a.GivenID && e.ID == a.ID {
			byID = e
		}
	}
	byEmail := live
	if byEmail == nil && deleted != nil && a.Deleted {
		byEmail = deleted // a deleted line finds its deleted account
	}
	switch {
	case byEmail == nil && (deleted != nil || moved != nil):
		e, reason := deleted, "the account an import made with this address was deleted here (an administrator can restore it)"
		if e == nil {
			e, reason = moved, "the account an import made with this address has another address now, changed here"
		}
		if bytes.Equal(e.LineDigest, a.LineDigest[:]) {
			return Decision{Result: Unchanged, Target: e.ID}
		}
		return Decision{Result: Skipped, Target: e.ID, Reason: reason}
	case byEmail == nil && byID == nil:
		return Decision{Result: Created}
	case byEmail == nil:
		return Decision{Result: Refused, Reason: "id belongs to an account with another address"}
	case a.GivenID && byEmail.ID != a.ID:
		return Decision{Result: Refused, Reason: "an account with this address exists with another id"}
	case byEmail.LineDigest == nil:
		// Registered or created here: its owner and administrators manage
		// it, and an import (which could set its password) never writes
		// over it.
		return Decision{Result: Skipped, Reason: "an account with this address was made here, not by an import, and is never written over by one"}
	case bytes.Equal(byEmail.LineDigest, a.LineDigest[:]):
		return Decision{Result: Unchanged, Target: byEmail.ID}
	case ru.o.Actor != nil && !ru.o.Actor.Has(byEmail.Permissions...):
		return Decision{Result: Refused, Reason: "the account with this address holds permissions you lack"}
	case !ru.o.Update:
		return Decision{Result: Skipped, Target: byEmail.ID, Reason: "an account with this address exists and differs (import with --update / update to write the line over it)"}
	}
	return ru.update(a, byEmail)
}

// update is the rule of an import writing a changed line over an account
// an earlier import made. The line's password hash replaces the account's
// only while the account still has the hash an import gave it and its
// owner has not logged in: once the owner has logged in or set a password
// here, that password stays. An import verifies, disables and deletes, and never undoes what
// was decided here (unverify, enable, restore). Every session ends when
// the password, the roles (which access tokens carry) or the account's
// standing change. Each change is audited with the account as subject.
func (ru *run) update(a Account, e *Existing) Decision {
	d := Decision{Result: Updated, Target: e.ID}
	newHash := a.PasswordHash != "" && !bytes.Equal(e.HashDigest, a.HashDigest[:])
	d.SetHash = newHash && e.HoldsImportedHash
	if newHash && !d.SetHash {
		d.Reason = "password_hash not written: the account's owner has logged in or set a password here since it was imported"
	}
	rolesChanged := !slices.Equal(e.Roles, a.Roles)
	disabling, deleting := a.Disabled && !e.Disabled, a.Deleted && !e.Deleted
	d.EndSessions = d.SetHash || rolesChanged || disabling || deleting
	var fields []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"name", !equalPtr(e.Name, a.Name)},
		{"email_verified", a.Verified && !e.Verified},
		{"disabled", disabling},
		{"deleted", deleting},
		{"external_id", !equalPtr(e.ExternalID, a.ExternalID)},
		{"password", d.SetHash},
	} {
		if f.changed {
			fields = append(fields, f.name)
		}
	}
	ev := func(action account.Action, details map[string]any) account.Event {
		details["source"] = ru.o.Source
		return account.Event{Action: action, ActorID: ru.actorID(), SubjectID: &d.Target, Client: ru.o.Client, Details: details}
	}
	if len(fields) > 0 {
		d.Events = append(d.Events, ev(account.ActionUserUpdated, map[string]any{"fields": fields}))
	}
	if rolesChanged {
		d.Events = append(d.Events, ev(account.ActionRolesChanged, map[string]any{"from": e.Roles, "to": a.Roles}))
	}
	return d
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// invite is the mail an account created without a password gets with
// Options.Invite.
func (ru *run) invite(a Account) []account.Mail {
	if !ru.o.Invite || a.Format != password.FormatNone || a.Deleted || a.Disabled {
		return nil
	}
	return []account.Mail{{Kind: mail.SetPassword, UserID: a.ID, To: a.Email}}
}

func (ru *run) actorID() *uuid.UUID {
	if ru.o.Actor == nil {
		return nil
	}
	return &ru.o.Actor.UserID
}

// event is a batch's audit record: counts, never addresses or hashes.
func (ru *run) event(outcomes []Outcome) *account.Event {
	var c Counts
	for _, o := range outcomes {
		c.Add(o.Result)
	}
	if c.Created+c.Updated == 0 {
		return nil
	}
	return &account.Event{
		Action: account.ActionUsersImported, ActorID: ru.actorID(), Client: ru.o.Client,
		Details: map[string]any{
			"source": ru.o.Source, "created": c.Created, "updated": c.Updated, "unchanged": c.Unchanged,
			"skipped": c.Skipped, "refused": c.Refused, "first_line": outcomes[0].Line, "last_line": outcomes[len(outcomes)-1].Line,
		},
	}
}
