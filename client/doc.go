// Package client is the Go client of apikeyd's HTTP API: every endpoint,
// with problem+json answers turned into *Error values and list pagination
// followed for you.
//
// A client holds the server's URL and a bearer token: a root key
// (apikeyd_…) with the permissions it needs, the admin token (break-glass),
// or an API key issued by apikeyd with the api-keys:* scopes it needs
// (api-keys:read to list and get, api-keys:write to create, change, rotate
// and revoke, api-keys:verify to verify). Root keys themselves are managed
// with CreateRootKey and the other RootKey methods, which need
// root-keys:read or root-keys:write; an API key may not call them.
//
//	c, err := client.New("http://127.0.0.1:8080", os.Getenv("APIKEYD_TOKEN"))
//	created, err := c.CreateKey(ctx, client.CreateParams{ProjectID: "acme", Name: "checkout"})
//	// created.Secret is the key: shown this once, store it now.
//	v, err := c.Verify(ctx, client.VerifyParams{Key: presented, Scopes: []string{"orders:read"}})
//	if v.Valid { … }
//
// Lists come as iterators that fetch the next page, following the server's
// Link header, when the loop gets there:
//
//	for k, err := range c.ListKeys(ctx, client.ListParams{ProjectID: "acme"}) {
//		if err != nil { … }
//		fmt.Println(k.ID, k.Name, k.Status)
//	}
//
// Every method takes a context and stops when it ends. Errors the server
// answers are *Error (use errors.As, or IsNotFound, IsForbidden and the
// other helpers); failures to reach it are the *url.Error of net/http.
// Neither ever contains the token or a key: the client sends them only in
// headers and bodies, and no error repeats either.
//
// To protect your own HTTP API with apikeyd, see package guard, which is
// built on this client.
package client
