package argon2id

import (
	"bytes"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestKey_RFC9106Vector is the argon2id test vector of RFC 9106, section
// 5.3: with a secret key and associated data, 4 lanes, 32 KiB, 3 passes.
func TestKey_RFC9106Vector(t *testing.T) {
	password := bytes.Repeat([]byte{0x01}, 32)
	salt := bytes.Repeat([]byte{0x02}, 16)
	secret := bytes.Repeat([]byte{0x03}, 8)
	data := bytes.Repeat([]byte{0x04}, 12)
	want := "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
	var m Memory
	// Twice in the same memory: the second hash finds the first one's blocks.
	for i := range 2 {
		got := hex.EncodeToString(m.Key(password, salt, secret, data, 3, 32, 4, 32))
		if got != want {
			t.Fatalf("hash %d: got %s, want %s", i, got, want)
		}
	}
}

// TestKey_XCryptoVectors are x/crypto's argon2id test vectors (argon2_test.go,
// TestVectors), computed both in fresh memory and in one memory reused from
// the largest to the smallest.
func TestKey_XCryptoVectors(t *testing.T) {
	password, salt := []byte("password"), []byte("somesalt")
	vectors := []struct {
		time, memory uint32
		threads      uint8
		hash         string
	}{
		{time: 4, memory: 4096, threads: 4, hash: "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
		{time: 1, memory: 64, threads: 1, hash: "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{time: 2, memory: 64, threads: 1, hash: "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
		{time: 2, memory: 64, threads: 2, hash: "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
		{time: 3, memory: 256, threads: 2, hash: "4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b"},
		{time: 4, memory: 1024, threads: 8, hash: "8dafa8e004f8ea96bf7c0f93eecf67a6047476143d15577f"},
		{time: 2, memory: 64, threads: 3, hash: "4a15b31aec7c2590b87d1f520be7d96f56658172deaa3079"},
		{time: 3, memory: 1024, threads: 6, hash: "1640b932f4b60e272f5d2207b9a9c626ffa1bd88d2349016"},
	}
	defer func(sse4 bool) { useSSE4 = sse4 }(useSSE4)
	for _, sse4 := range []bool{useSSE4, false} {
		useSSE4 = sse4 // false: the generic block function (amd64 keeps the SSE2 XORs)
		testXCryptoVectors(t, password, salt, vectors)
	}
}

func testXCryptoVectors(t *testing.T, password, salt []byte, vectors []struct {
	time, memory uint32
	threads      uint8
	hash         string
},
) {
	var reused Memory
	for _, v := range vectors {
		want, err := hex.DecodeString(v.hash)
		if err != nil {
			t.Fatal(err)
		}
		if got := Key(password, salt, v.time, v.memory, v.threads, uint32(len(want))); !bytes.Equal(got, want) {
			t.Errorf("t=%d m=%d p=%d (SSE4.1 %v): got %x, want %x", v.time, v.memory, v.threads, useSSE4, got, want)
		}
		if got := reused.Key(password, salt, nil, nil, v.time, v.memory, v.threads, uint32(len(want))); !bytes.Equal(got, want) {
			t.Errorf("t=%d m=%d p=%d in reused memory: got %x, want %x", v.time, v.memory, v.threads, got, want)
		}
	}
	if reused.Size() != 4096 {
		t.Errorf("reused memory holds %d KiB, want the largest cost asked, 4096", reused.Size())
	}
}

// TestMemory_LimitKeepsLargerCostsOut: the memory kept is allocated at the
// limit by the first hash, even a smaller one; a hash asking for more than
// the limit gets memory of its own; every key is right.
func TestMemory_LimitKeepsLargerCostsOut(t *testing.T) {
	m := Memory{Limit: 64}
	pw, salt := []byte("password"), []byte("somesalt")
	for _, cost := range []uint32{32, 256, 64, 8} {
		if got, want := m.Key(pw, salt, nil, nil, 2, cost, 1, 32), argon2.IDKey(pw, salt, 2, cost, 1, 32); !bytes.Equal(got, want) {
			t.Fatalf("m=%d: got %x, want %x", cost, got, want)
		}
		if m.Size() != 64 {
			t.Fatalf("after m=%d the memory holds %d KiB, want 64", cost, m.Size())
		}
	}
}

// FuzzIDKeyMatchesXCrypto: for any password, salt and small costs, the key is
// x/crypto's argon2.IDKey, in fresh memory and in memory a previous input
// left dirty, and KeyI's is x/crypto's argon2i (argon2.Key). The seeds run as
// a normal test.
func FuzzIDKeyMatchesXCrypto(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(1), uint16(8), uint8(1), uint8(32))
	f.Add([]byte(""), []byte(""), uint8(2), uint16(64), uint8(1), uint8(16))
	f.Add([]byte("correct horse battery staple"), []byte("0123456789abcdef"), uint8(3), uint16(100), uint8(3), uint8(64))
	f.Add([]byte{0xff, 0x00, 0x80}, []byte("salt"), uint8(2), uint16(300), uint8(4), uint8(65))
	f.Add([]byte("p"), []byte("s"), uint8(1), uint16(1), uint8(7), uint8(1))
	f.Add(bytes.Repeat([]byte("long"), 100), []byte("somesalt"), uint8(4), uint16(513), uint8(2), uint8(255))
	var reused Memory
	f.Fuzz(func(t *testing.T, password, salt []byte, time uint8, memory uint16, threads, keyLen uint8) {
		tm := uint32(time%4) + 1
		mem := uint32(memory % 1024)
		p := threads%8 + 1
		kl := uint32(keyLen) + 1
		want := argon2.IDKey(password, salt, tm, mem, p, kl)
		if got := Key(password, salt, tm, mem, p, kl); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: got %x, want %x", tm, mem, p, kl, got, want)
		}
		if got := reused.Key(password, salt, nil, nil, tm, mem, p, kl); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d in reused memory: got %x, want %x", tm, mem, p, kl, got, want)
		}
		wantI := argon2.Key(password, salt, tm, mem, p, kl)
		if got := reused.KeyI(password, salt, nil, nil, tm, mem, p, kl); !bytes.Equal(got, wantI) {
			t.Fatalf("argon2i t=%d m=%d p=%d len=%d in reused memory: got %x, want %x", tm, mem, p, kl, got, wantI)
		}
	})
}

// BenchmarkKey compares one hash with gatehouse's default cost (19 MiB,
// 2 passes, 1 lane) here, in reused memory, with x/crypto's.
func BenchmarkKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("reused memory", func(b *testing.B) {
		var m Memory
		for b.Loop() {
			m.Key(pw, salt, nil, nil, 2, 19*1024, 1, 32)
		}
	})
	b.Run("fresh memory", func(b *testing.B) {
		for b.Loop() {
			Key(pw, salt, 2, 19*1024, 1, 32)
		}
	})
	b.Run("x/crypto", func(b *testing.B) {
		for b.Loop() {
			argon2.IDKey(pw, salt, 2, 19*1024, 1, 32)
		}
	})
}

// TestProcessBlock_GenericMatchesSIMD: the block function used here (SIMD on
// amd64) and the generic one agree on arbitrary blocks, XOR or not.
func TestProcessBlock_GenericMatchesSIMD(t *testing.T) {
	var in1, in2 block
	for i := range in1 {
		in1[i] = uint64(i)*0x9e3779b97f4a7c15 + 1
		in2[i] = ^uint64(i) * 0xbf58476d1ce4e5b9
	}
	for _, xor := range []bool{false, true} {
		var got, want block
		got[0], want[0] = 7, 7
		if xor {
			processBlockXOR(&got, &in1, &in2)
		} else {
			processBlock(&got, &in1, &in2)
		}
		processBlockGeneric(&want, &in1, &in2, xor)
		if got != want {
			t.Errorf("xor=%v: the block functions differ", xor)
		}
	}
}
