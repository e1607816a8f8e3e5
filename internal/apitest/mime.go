package apitest

import (
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

type mimeDecoder struct{ mime.WordDecoder }

func (d *mimeDecoder) header(v string) string {
	s, err := d.DecodeHeader(v)
	if err != nil {
		return v
	}
	return s
}

// parts returns the decoded text/plain and text/html parts of a message.
func parts(msg *mail.Message) (text, html string) {
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", ""
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return decodePart(msg.Body, msg.Header.Get("Content-Transfer-Encoding")), ""
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err != nil {
			return text, html
		}
		body := decodePart(p, p.Header.Get("Content-Transfer-Encoding"))
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			text = body
		case strings.HasPrefix(ct, "text/html"):
			html = body
		}
	}
}

func decodePart(r io.Reader, encoding string) string {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}
