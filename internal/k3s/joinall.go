package k3s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// JoinAll runs the joins in parallel, at most concurrency at a time (zero or less means
// 10), and writes one progress line per host to progress when it finishes. It returns a
// result for every join, in order, and the failures joined into one error.
func JoinAll(ctx context.Context, agents []JoinAgent, concurrency int, progress io.Writer) ([]AgentResult, error) {
	if concurrency <= 0 {
		concurrency = 10
	}
	results := make([]AgentResult, len(agents))
	errs := make([]error, len(agents))
	sem := make(chan struct{}, concurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("join %s: %w", hostOf(a), ctx.Err())
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			a.Log = nil
			res, err := a.Run(ctx)
			results[i], errs[i] = res, err
			line := ""
			switch {
			case err != nil:
				// The error names the host already.
				line = err.Error()
			case res.Changed:
				line = fmt.Sprintf("%s: node %s joined or updated (%.1fs)", hostOf(a), res.NodeName, time.Since(start).Seconds())
			default:
				line = fmt.Sprintf("%s: node %s up to date, nothing changed (%.1fs)", hostOf(a), res.NodeName, time.Since(start).Seconds())
			}
			if progress != nil {
				mu.Lock()
				fmt.Fprintln(progress, line)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

func hostOf(a JoinAgent) string {
	if a.Exec == nil {
		return "(no executor)"
	}
	return a.Exec.Host()
}
