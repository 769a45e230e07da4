package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apikeyd/apikeyd/client"
)

// This example runs against a real apikeyd that the package's tests start;
// APIKEYD_URL and APIKEYD_TOKEN (the admin token) point to it.
func Example() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("APIKEYD_URL"), os.Getenv("APIKEYD_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}

	// Issue a key. created.Secret is the key itself: hand it to your
	// customer now, apikeyd keeps only its hash.
	created, err := c.CreateKey(ctx, client.CreateParams{
		ProjectID:     "example",
		Name:          "checkout service",
		EnvironmentID: "prod",
		Scopes:        []string{"orders:read", "orders:write"},
		ExpiresInDays: 90,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created.Name, created.Scopes, created.Status)

	// Verify it, as your API does on every request.
	v, err := c.Verify(ctx, client.VerifyParams{Key: created.Secret, Scopes: []string{"orders:read"}, EnvironmentID: "prod"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("orders:read:", v.Valid, v.Code)
	v, err = c.Verify(ctx, client.VerifyParams{Key: created.Secret, Scopes: []string{"billing:read"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("billing:read:", v.Valid, v.Code)

	// Rotate it with no grace period: the old key stops working at once.
	rotated, err := c.RotateKey(ctx, created.ID, client.RotateParams{GracePeriodMinutes: new(0)})
	if err != nil {
		log.Fatal(err)
	}
	v, err = c.Verify(ctx, client.VerifyParams{Key: created.Secret})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("old key:", v.Code)
	v, err = c.Verify(ctx, client.VerifyParams{Key: rotated.Secret, Scopes: []string{"orders:write"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new key:", v.Code, v.Name)

	old, err := c.GetKey(ctx, created.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("old key status:", old.Status, *old.ReplacedByKeyID == rotated.NewKeyID)
	// Output:
	// created: checkout service [orders:read orders:write] active
	// orders:read: true VALID
	// billing:read: false INSUFFICIENT_SCOPE
	// old key: ROTATED
	// new key: VALID checkout service
	// old key status: rotated true
}

// Every key of a project, newest first: the iterator fetches the next page
// when the loop reaches it, and stops fetching when the loop stops.
func ExampleClient_ListKeys() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("APIKEYD_URL"), os.Getenv("APIKEYD_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	for k, err := range c.ListKeys(ctx, client.ListParams{ProjectID: "acme", Status: client.StatusActive}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k.ID, k.Name, k.KeyPrefix, k.Scopes)
	}
}

func ExampleIsNotFound() {
	c, err := client.New(os.Getenv("APIKEYD_URL"), os.Getenv("APIKEYD_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.GetKey(context.Background(), "key_00000000000000000000000000")
	switch {
	case client.IsNotFound(err):
		fmt.Println("no such key")
	case err != nil:
		log.Fatal(err)
	}
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Type)
	}
	// Output:
	// no such key
	// 404 urn:apikeyd:problem:not-found
}

func ExampleClient_UpdateKey() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("APIKEYD_URL"), os.Getenv("APIKEYD_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	k, err := c.CreateKey(ctx, client.CreateParams{ProjectID: "example-update", Name: "reporting", ExpiresInDays: 7})
	if err != nil {
		log.Fatal(err)
	}
	// Rename the key and remove its expiry; fields left out stay as they are.
	u, err := c.UpdateKey(ctx, k.ID, client.UpdateParams{
		Name:      client.Value("nightly reporting"),
		ExpiresAt: client.Null[time.Time](),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Name, u.ExpiresAt == nil)
	// Output: nightly reporting true
}
