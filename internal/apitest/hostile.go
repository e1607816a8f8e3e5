package apitest

import (
	"bytes"
	"fmt"
	"strings"
)

// HostileBody is a request body shaped to make a JSON reader spend time or
// memory out of proportion to its size.
type HostileBody struct {
	Name string
	Body []byte
}

// HostileBodies returns one body of each hostile shape, each filling at most
// size bytes: arrays and objects nested as deep as the size allows (524,288
// levels in 1 MiB), very many small objects (131,000), one very long array
// (524,000 elements), very many unknown keys (61,000), 995 unknown keys with
// values as long as the size allows (just under the server's limit of 1,000
// values, so they reach the schema validator), one very long string and one
// long run of escapes. The tests, the fuzz seeds and `make bench` send the same ones.
func HostileBodies(size int) []HostileBody {
	const login = `{"email":"a@example.com","password":"correct horse battery staple",`
	var out []HostileBody
	var b bytes.Buffer
	add := func(name string) {
		if b.Len() > size {
			panic(fmt.Sprintf("hostile body %q is %d bytes, more than %d", name, b.Len(), size))
		}
		out = append(out, HostileBody{name, bytes.Clone(b.Bytes())})
		b.Reset()
	}
	// fill appends item(i) (with commas between) for i = 0, 1, ... as long
	// as it fits before tail.
	fill := func(item func(i int) string, tail string) {
		for i := 0; ; i++ {
			s := item(i)
			if i > 0 {
				s = "," + s
			}
			if b.Len()+len(s)+len(tail) > size {
				break
			}
			b.WriteString(s)
		}
		b.WriteString(tail)
	}

	b.WriteString(strings.Repeat("[", size/2) + strings.Repeat("]", size/2))
	add("deep arrays")

	n := (size - 1) / 6
	b.WriteString(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	add("deep objects")

	b.WriteString(login + `"x":[`)
	fill(func(int) string { return `{"a":0}` }, "]}")
	add("wide objects")

	b.WriteString("[")
	fill(func(int) string { return "0" }, "]")
	add("long array")

	b.WriteString(login)
	fill(func(i int) string { return fmt.Sprintf(`"field_%06d":0`, i) }, "}")
	add("many unknown keys")

	keys := min(995, (size-len(login)-1)/24)
	valueLen := (size-len(login)-1)/keys - len(`,"k000":""`)
	b.WriteString(login)
	for i := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%03d":"%s"`, i, strings.Repeat("v", valueLen))
	}
	b.WriteString("}")
	add("unknown keys, long values")

	rest := size - len(`{"email":"a@example.com","password":""}`)
	b.WriteString(`{"email":"a@example.com","password":"` + strings.Repeat("a", rest) + `"}`)
	add("one long string")

	b.WriteString(`{"email":"a@example.com","password":"` + strings.Repeat(`\u00e9`, rest/6) + `"}`)
	add("long run of escapes")
	return out
}
