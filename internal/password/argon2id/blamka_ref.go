// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Copied from golang.org/x/crypto v0.58.0, argon2/blamka_ref.go (the licence
// is in ./LICENSE); loong64 uses the generic code here.

//go:build !amd64 || purego || !gc

package argon2id

func processBlock(out, in1, in2 *block) {
	processBlockGeneric(out, in1, in2, false)
}

func processBlockXOR(out, in1, in2 *block) {
	processBlockGeneric(out, in1, in2, true)
}
