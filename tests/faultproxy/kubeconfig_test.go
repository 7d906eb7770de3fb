package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestYAMLSubset(t *testing.T) {
	src := `# comment
apiVersion: v1
clusters:
- cluster:
    insecure-skip-tls-verify: true
    server: "https://127.0.0.1:6443" # trailing comment
    extensions:
    - name: a
      extension: {}
  name: 'it''s'
users:
  - name: u
    user:
      exec:
        args: [get-token, "--x"]
        env: []
        command: cmd
      port: 8080
      empty:
      nested:
        - - a
          - b
current-context: c
`
	v, err := parseYAMLSubset([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	want := `{"apiVersion":"v1","clusters":[{"cluster":{"extensions":[{"extension":{},"name":"a"}],"insecure-skip-tls-verify":true,"server":"https://127.0.0.1:6443"},"name":"it's"}],"current-context":"c","users":[{"name":"u","user":{"empty":null,"exec":{"args":["get-token","--x"],"command":"cmd","env":[]},"nested":[["a","b"]],"port":8080}}]}`
	var a, b any
	json.Unmarshal(got, &a)
	json.Unmarshal([]byte(want), &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"a: |\n  text\n", "a: &x 1\n", "a: {b: c}\n", "a:\n\tb: c\n", "a: 1\n  b: 2\n", "- a\nb: 1\n"} {
		if _, err := parseYAMLSubset([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
