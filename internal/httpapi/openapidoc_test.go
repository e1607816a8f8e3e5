package httpapi

import "testing"

func TestServedSpec_ListsPublicURLAfterTheRelativeServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, url, yml, js string }{
		{
			name: "second of several",
			src:  "a: 1\nservers:\n  - url: /\n  - url: http://localhost:5500\nz: 2\n",
			url:  "https://auth.example.com/",
			yml:  "a: 1\nservers:\n  - url: /\n  - url: \"https://auth.example.com\"\n    description: This server (PUBLIC_URL)\n  - url: http://localhost:5500\nz: 2\n",
			js:   `{"a":1,"servers":[{"url":"/"},{"url":"https://auth.example.com","description":"This server (PUBLIC_URL)"},{"url":"http://localhost:5500"}],"z":2}`,
		},
		{
			name: "servers last, one entry, no final newline",
			src:  "servers:\n- url: /",
			url:  "https://a.example",
			yml:  "servers:\n- url: /\n- url: \"https://a.example\"\n  description: This server (PUBLIC_URL)\n",
			js:   `{"servers":[{"url":"/"},{"url":"https://a.example","description":"This server (PUBLIC_URL)"}]}`,
		},
		{
			name: "already listed",
			src:  "servers:\n  - url: /\n  - url: http://localhost:5500\n",
			url:  "http://localhost:5500",
			yml:  "servers:\n  - url: /\n  - url: http://localhost:5500\n",
			js:   `{"servers":[{"url":"/"},{"url":"http://localhost:5500"}]}`,
		},
		{
			name: "scalars keep their JSON types and text",
			src:  "servers: [{url: /}]\nd: 2025-01-10\nt: true\nn: null\nf: 1.5\ni: 0x1F\ns: '1'\nh: <a&b>\n",
			js:   `{"servers":[{"url":"/"}],"d":"2025-01-10","t":true,"n":null,"f":1.5,"i":31,"s":"1","h":"<a&b>"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yml, js, err := servedSpec([]byte(tc.src), tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if tc.yml != "" && string(yml) != tc.yml {
				t.Errorf("YAML:\n%s\nwant:\n%s", yml, tc.yml)
			}
			if string(js) != tc.js {
				t.Errorf("JSON:\n%s\nwant:\n%s", js, tc.js)
			}
		})
	}
}
