package provider

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/pulumi/pulumi-go-provider/infer"
)

// Password is a random password generated once and kept in the stack's state as a
// secret (the Rancher bootstrap password, the database password).
type Password struct{}

// PasswordArgs are the inputs of a Password.
type PasswordArgs struct {
	// Length is the number of characters; at least 16.
	Length int `pulumi:"length"`
}

// PasswordState is a Password's state.
type PasswordState struct {
	PasswordArgs
	Result string `pulumi:"result" provider:"secret"`
}

const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Annotate documents the resource.
func (p *Password) Annotate(a infer.Annotator) {
	a.Describe(p, "A random password generated once and stored as a secret.")
	a.SetToken("index", "Password")
}

// Create generates the password.
func (*Password) Create(ctx context.Context, req infer.CreateRequest[PasswordArgs]) (infer.CreateResponse[PasswordState], error) {
	if req.Inputs.Length < 16 || req.Inputs.Length > 256 {
		return infer.CreateResponse[PasswordState]{}, fmt.Errorf("password length %d: want 16 to 256", req.Inputs.Length)
	}
	st := PasswordState{PasswordArgs: req.Inputs}
	id := rand.Text()[:12]
	if req.DryRun {
		return infer.CreateResponse[PasswordState]{ID: id, Output: st}, nil
	}
	b := make([]byte, req.Inputs.Length)
	for i := range b {
		b[i] = passwordAlphabet[randIntn(len(passwordAlphabet))]
	}
	st.Result = string(b)
	return infer.CreateResponse[PasswordState]{ID: id, Output: st}, nil
}

// Diff replaces the password only when its length changes.
func (*Password) Diff(ctx context.Context, req infer.DiffRequest[PasswordArgs, PasswordState]) (infer.DiffResponse, error) {
	d := diff(inputs(req.State.PasswordArgs, req.Inputs, "length")...)
	d.DeleteBeforeReplace = false
	return d, nil
}

// randIntn returns a uniform random number in [0, n) from crypto/rand.
func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// WireDependencies marks the password secret.
func (*Password) WireDependencies(f infer.FieldSelector, args *PasswordArgs, state *PasswordState) {
	f.OutputField(state).DependsOn(f.InputField(args).Computed())
	f.OutputField(&state.Result).AlwaysSecret()
}
