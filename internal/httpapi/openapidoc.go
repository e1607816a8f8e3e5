package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// servedSpec returns the contract as /openapi.yaml and /openapi.json serve
// it: one document in two notations. The YAML is the file as written, with
// publicURL listed after the relative server when it is not listed yet; the
// JSON is that YAML converted key by key, in the same order, so operation
// ids, the order of paths and every value are those of the file.
func servedSpec(src []byte, publicURL string) (yml, js []byte, err error) {
	yml, err = listServer(src, strings.TrimRight(publicURL, "/"))
	if err != nil {
		return nil, nil, err
	}
	js, err = yamlToJSON(yml)
	if err != nil {
		return nil, nil, fmt.Errorf("convert the spec to JSON: %w", err)
	}
	return yml, js, nil
}

// listServer adds url to the top-level servers of the YAML document src,
// second, after the relative server that makes the docs work from any
// origin: clients generated from the served document then find an absolute
// base URL too. It edits the text, not a re-encoded tree, so the rest of the
// file stays byte for byte as written.
func listServer(src []byte, url string) ([]byte, error) {
	if url == "" {
		return src, nil
	}
	servers, next, err := topLevel(src, "servers")
	if err != nil {
		return nil, err
	}
	if servers.Kind != yaml.SequenceNode || servers.Style&yaml.FlowStyle != 0 || len(servers.Content) == 0 {
		return nil, errors.New("the spec's servers must be a non-empty block sequence")
	}
	for _, s := range servers.Content {
		if u, _ := mapValue(s, "url"); u != nil && u.Value == url {
			return src, nil
		}
	}
	lines := bytes.SplitAfter(src, []byte("\n"))
	first := servers.Content[0]
	// The text before the first server's `url:`, e.g. "  - ", indents the new entry.
	prefix := string(lines[first.Line-1][:first.Column-1])
	pad := strings.Repeat(" ", len(prefix))
	quoted, err := json.Marshal(url) // a JSON string is a YAML double-quoted scalar
	if err != nil {
		return nil, fmt.Errorf("quote PUBLIC_URL: %w", err)
	}
	entry := prefix + "url: " + string(quoted) + "\n" + pad + "description: This server (PUBLIC_URL)\n"
	at := next // before the next top-level key, or the second server
	if len(servers.Content) > 1 {
		at = servers.Content[1].Line
	}
	var out bytes.Buffer
	for i, l := range lines {
		if i == at-1 {
			out.WriteString(entry)
		}
		out.Write(l)
	}
	if at > len(lines) {
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteString(entry)
	}
	// Check the edit rather than trust it.
	got, _, err := topLevel(out.Bytes(), "servers")
	if err != nil {
		return nil, err
	}
	if len(got.Content) != len(servers.Content)+1 {
		return nil, errors.New("listing PUBLIC_URL in the spec's servers failed")
	}
	if u, _ := mapValue(got.Content[1], "url"); u == nil || u.Value != url {
		return nil, errors.New("listing PUBLIC_URL in the spec's servers failed")
	}
	return out.Bytes(), nil
}

// topLevel returns the value of a top-level key of a YAML document and the
// line of the key after it (one past the last line when it is the last).
func topLevel(src []byte, key string) (*yaml.Node, int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, 0, fmt.Errorf("parse the spec: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, 0, errors.New("the spec is not a YAML mapping")
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != key {
			continue
		}
		next := bytes.Count(src, []byte("\n")) + 2
		if i+2 < len(root.Content) {
			next = root.Content[i+2].Line
		}
		return root.Content[i+1], next, nil
	}
	return nil, 0, fmt.Errorf("the spec has no %s", key)
}

func mapValue(m *yaml.Node, key string) (*yaml.Node, bool) {
	if m.Kind != yaml.MappingNode {
		return nil, false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], true
		}
	}
	return nil, false
}

// yamlToJSON converts a YAML document to JSON keeping the order of every
// mapping. Converting through Go maps (as sigs.k8s.io/yaml does) or
// re-encoding kin-openapi's model would sort the keys.
func yamlToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("want exactly one YAML document")
	}
	var out bytes.Buffer
	if err := writeJSON(&out, doc.Content[0]); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeJSON(out *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(out, n.Alias)
	case yaml.MappingNode:
		out.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return fmt.Errorf("line %d: only plain scalar keys convert to JSON", k.Line)
			}
			if i > 0 {
				out.WriteByte(',')
			}
			writeString(out, k.Value)
			out.WriteByte(':')
			if err := writeJSON(out, n.Content[i+1]); err != nil {
				return err
			}
		}
		out.WriteByte('}')
	case yaml.SequenceNode:
		out.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := writeJSON(out, c); err != nil {
				return err
			}
		}
		out.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(out, n)
	default:
		return fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	return nil
}

func writeScalar(out *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		out.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		out.WriteString(strconv.FormatBool(b))
	case "!!int":
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		fmt.Fprint(out, v) // int, int64 or uint64: decimal digits
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("line %d: %s has no JSON form", n.Line, n.Value)
		}
		out.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	default:
		// Strings, and timestamps kept as the text written (decoding them
		// would turn 2025-01-10 into 2025-01-10T00:00:00Z).
		writeString(out, n.Value)
	}
	return nil
}

func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	out.Truncate(out.Len() - 1) // Encode's newline
}
