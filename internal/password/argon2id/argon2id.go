// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Adapted for gatehouse from golang.org/x/crypto v0.58.0, argon2/argon2.go
// (the licence is in ./LICENSE): argon2id, and argon2i for verifying
// imported hashes, version 0x13 only; the caller may supply the work memory,
// which is reused from one hash to the next; lanes run one after the other
// on the calling goroutine.

// Package argon2id is argon2id (RFC 9106, version 0x13) whose work memory
// the caller owns. x/crypto's argon2 allocates the memory cost (19 MiB with
// OWASP's parameters) on every call; a server hashing dozens of passwords a
// second then either lets its heap grow by that much per hash in flight or,
// under a soft memory limit, has the runtime return those pages to the kernel
// and fault them in again, which costs a third of the hash rate. A Memory is
// allocated once and reused by one hash at a time.
//
// The computation is x/crypto's, line for line, with two changes that keep
// its output: the first pass overwrites blocks instead of XORing into them
// (x/crypto relies on freshly zeroed memory; RFC 9106 section 3.2 step 5 says
// overwrite), and lanes are computed in turn rather than on a goroutine each
// (a segment references other lanes only in slices already finished, so the
// order does not change the result, and a hash stays on the goroutine, and
// OS thread, of its caller).
package argon2id

import (
	"encoding/binary"

	"golang.org/x/crypto/blake2b"
)

// Version is the argon2 version implemented (0x13, RFC 9106).
const Version = 0x13

// The types the parameter block and address blocks carry.
const (
	argon2i  = 1
	argon2id = 2
)

// Key derives a key from the password, salt, and cost parameters using
// argon2id, with a work memory of its own, like x/crypto's argon2.IDKey.
// The time and threads parameters must be greater than zero.
func Key(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	var m Memory
	return m.Key(password, salt, nil, nil, time, memory, threads, keyLen)
}

// Memory is argon2id's work memory, allocated at its first use (to Limit,
// or to the memory cost asked when that is larger) and reused by later
// hashes. A Memory is not safe for
// concurrent use: each goroutine that hashes owns one.
type Memory struct {
	blocks []block
	// Limit bounds the work memory kept, in KiB (1 KiB blocks): a hash asking
	// for more gets memory of its own, left to the garbage collector, so one
	// hash with an old, larger cost does not keep its memory for good. Zero
	// keeps whatever the first hash asked for.
	Limit uint32
}

// Size is the work memory held, in KiB.
func (m *Memory) Size() uint32 { return uint32(len(m.blocks)) }

// Key derives a key like Key, with the RFC 9106 secret key and associated
// data (both may be nil), in m's work memory.
func (m *Memory) Key(password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return m.key(argon2id, password, salt, secret, data, time, memory, threads, keyLen)
}

// KeyI is Key with argon2i (data-independent addressing on every pass), as
// x/crypto's argon2.Key computes it, for hashes made by other systems.
func (m *Memory) KeyI(password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return m.key(argon2i, password, salt, secret, data, time, memory, threads, keyLen)
}

func (m *Memory) key(mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2id: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2id: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, mode)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	B := m.work(memory)
	initBlocks(B, &h0, memory, uint32(threads))
	processBlocks(B, time, memory, uint32(threads), mode)
	return extractKey(B, memory, uint32(threads), keyLen)
}

// work returns n blocks of work memory: m's own, allocated at the first use,
// or temporary ones when m's Limit is below n. Their content is whatever the
// last hash left; the first pass overwrites every block before it is read.
func (m *Memory) work(n uint32) []block {
	if uint32(len(m.blocks)) >= n {
		return m.blocks[:n]
	}
	if m.Limit != 0 && n > m.Limit {
		return make([]block, n)
	}
	m.blocks = make([]block, max(n, m.Limit))
	return m.blocks[:n]
}

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

// initBlocks writes the first two blocks of each lane into B (x/crypto
// allocates B here).
func initBlocks(B []block, h0 *[blake2b.Size + 8]byte, memory, threads uint32) {
	var block0 [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
}

func processBlocks(B []block, time, memory, threads uint32, mode int) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32) {
		var addresses, in, zero block
		// argon2i addresses data-independently on every pass, argon2id on
		// the first half of the first.
		independent := mode == argon2i || n == 0 && slice < syncPoints/2
		if independent {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(mode)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			in[6]++
			processBlock(&addresses, &in, &zero)
			processBlock(&addresses, &addresses, &zero)
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if independent {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			// x/crypto XORs on the first pass too, into zeroed memory; a
			// reused memory holds the last hash's blocks, so the first pass
			// overwrites (the same result on zeroed memory).
			if n == 0 {
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			for lane := uint32(0); lane < threads; lane++ {
				processSegment(n, slice, lane)
			}
		}
	}
}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
