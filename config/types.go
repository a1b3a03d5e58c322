package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// typeErrors decodes data key by key into a Config, so that every value
// of the wrong type is reported, not just the first the library meets.
// It expects data to be valid TOML.
func typeErrors(name, data string) Errors {
	var top map[string]toml.Primitive
	md, err := toml.Decode(data, &top)
	if err != nil {
		return Errors{syntaxError(name, err)}
	}
	d := &typeDecoder{file: name, md: &md}
	c := reflect.ValueOf(Default()).Elem()
	for _, section := range sortedNames(top) {
		f, ok := fieldByTag(c, section)
		if !ok {
			continue // reported as an unknown key once the types are right
		}
		switch {
		case f.Kind() == reflect.Struct && f.Type() != durationType:
			d.table(section, top[section], f)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			d.tables(section, top[section], f)
		default:
			d.value(section, top[section], f)
		}
	}
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	out := make(Errors, len(d.errs))
	for i, e := range d.errs {
		out[i] = e
	}
	return out
}

var durationType = reflect.TypeOf(Duration{})

// typeDecoder decodes one key at a time, collecting what does not fit.
type typeDecoder struct {
	file string
	md   *toml.MetaData
	errs []*FieldError
}

// table decodes [section] key by key into the struct v.
func (d *typeDecoder) table(section string, p toml.Primitive, v reflect.Value) {
	var keys map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(p, &keys); err != nil {
		d.fail(section, v.Type(), err)
		return
	}
	for _, k := range sortedNames(keys) {
		if f, ok := fieldByTag(v, k); ok {
			d.value(section+"."+k, keys[k], f)
		}
	}
}

// tables decodes [[section]] tables key by key into the slice v.
func (d *typeDecoder) tables(section string, p toml.Primitive, v reflect.Value) {
	var list []map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(p, &list); err != nil {
		d.fail(section, v.Type(), err)
		return
	}
	for i, keys := range list {
		elem := reflect.New(v.Type().Elem()).Elem()
		for _, k := range sortedNames(keys) {
			if f, ok := fieldByTag(elem, k); ok {
				d.value(fmt.Sprintf("%s[%d].%s", section, i, k), keys[k], f)
			}
		}
	}
}

func (d *typeDecoder) value(key string, p toml.Primitive, v reflect.Value) {
	if err := d.md.PrimitiveDecode(p, v.Addr().Interface()); err != nil {
		d.fail(key, v.Type(), err)
	}
}

// lineRE finds the line in the library's type errors, which are plain
// errors: `toml: line 27 (last key "ticket.pow_bits"): incompatible types…`.
var lineRE = regexp.MustCompile(`^toml: line (\d+)`)

func (d *typeDecoder) fail(key string, t reflect.Type, err error) {
	fe := &FieldError{File: d.file, Key: key, Msg: "must be " + typeName(t)}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		// A value of the right TOML type that its parser refused, such
		// as expiry = "30 minutes": say why.
		fe.Line = pe.Position.Line
		fe.Msg += ": " + pe.Message
	} else if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
	}
	d.errs = append(d.errs, fe)
}

// typeName says what a value of Go type t is written as in TOML.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration in quotes, such as "30m" or "48h"`
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.String:
		return "a string in quotes"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return `a list of strings, such as ["a", "b"]`
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "a list of tables, each starting with a [[...]] line"
	case t.Kind() == reflect.Struct:
		return "a table, starting with a [...] line"
	}
	return "a " + t.String()
}

// fieldByTag finds the field of struct v whose toml tag is name, the way
// the library does: exact first, then ignoring case.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	fold := -1
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
		if tag == name {
			return v.Field(i), true
		}
		if fold < 0 && tag != "" && tag != "-" && strings.EqualFold(tag, name) {
			fold = i
		}
	}
	if fold >= 0 {
		return v.Field(fold), true
	}
	return reflect.Value{}, false
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
