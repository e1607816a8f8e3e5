package secretbox_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/internal/secretbox"
)

func key(t *testing.T) []byte {
	b := make([]byte, secretbox.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyring_RotationOpensOldValuesAndSealsWithTheFirstKey(t *testing.T) {
	old, next := key(t), key(t)
	before, err := secretbox.New(old)
	if err != nil {
		t.Fatal(err)
	}
	sealed, id, err := before.Seal([]byte("seed"), []byte("factor-1"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := secretbox.New(next, old)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.Open(sealed, id, []byte("factor-1")); err != nil || !bytes.Equal(got, []byte("seed")) {
		t.Fatalf("old value after rotation: %q %v", got, err)
	}
	if _, nid, _ := after.Seal([]byte("x"), nil); nid != secretbox.KeyID(next) || nid == id {
		t.Fatalf("seals with %s, want the first key %s", nid, secretbox.KeyID(next))
	}
	if _, err := after.Open(sealed, id, []byte("factor-2")); err == nil {
		t.Fatal("a value opened under another record's binding")
	}
	dropped, _ := secretbox.New(next)
	if _, err := dropped.Open(sealed, id, []byte("factor-1")); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("dropped key: %v", err)
	}
}

func TestParse_RefusesKeysOfTheWrongSize(t *testing.T) {
	if _, err := secretbox.Parse("c2hvcnQ="); err == nil {
		t.Fatal("accepted a 5-byte key")
	}
	if ks, err := secretbox.Parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="); err != nil || len(ks) != 2 {
		t.Fatalf("two keys: %v %v", len(ks), err)
	}
}
