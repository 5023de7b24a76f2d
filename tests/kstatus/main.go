// Command kstatus prints what sigs.k8s.io/cli-utils/pkg/kstatus/status (the library behind Flux's health
// checks and `flux ... --wait`) computes for Kubernetes objects: it reads `kubectl get -o json` output (one
// object or a List) on stdin and writes one JSON line per object: {"name", "status", "message"}.
//
// Objects are decoded with unstructured's own JSON decoder, as the library's callers do: encoding/json
// would turn metadata.generation into a float64, which the library does not read as a generation.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func objects(input []byte) ([]unstructured.Unstructured, error) {
	var one unstructured.Unstructured
	if err := one.UnmarshalJSON(input); err != nil {
		return nil, err
	}
	if !one.IsList() {
		return []unstructured.Unstructured{one}, nil
	}
	var list unstructured.UnstructuredList
	if err := list.UnmarshalJSON(input); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func run(in io.Reader, out io.Writer) error {
	input, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	items, err := objects(input)
	if err != nil {
		return fmt.Errorf("decoding the objects: %w", err)
	}
	encoder := json.NewEncoder(out)
	for i := range items {
		result, err := status.Compute(&items[i])
		if err != nil {
			return fmt.Errorf("%s: %w", items[i].GetName(), err)
		}
		line := verdict{Name: items[i].GetName(), Status: result.Status.String(), Message: result.Message}
		if err := encoder.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
