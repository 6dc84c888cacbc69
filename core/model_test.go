package core_test

import (
	"testing"

	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/core/storagetest"
)

// TestModel runs the model-based lifecycle test (storagetest.RunModel:
// random sequences of issue, redeem, replay, wrong-verifier redemption,
// refresh, refresh-token reuse, revocation and clock steps, checked
// against a model after every step) on the memory store, which sweeps
// by the model's clock.
func TestModel(t *testing.T) {
	s := memstore.New()
	cfg := storagetest.ModelConfig{Sequences: 200, Steps: 50, SetClock: s.SetClock}
	if testing.Short() {
		cfg.Sequences = 20
	}
	storagetest.RunModel(t, s, cfg)
}
