package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// The session's controls pass its keys on while they have the focus.
// Fyne gives a typed key to the focused widget alone, and a check or a
// slider takes the focus when clicked: without this, M and R would stop
// working once the singer had clicked Mute or moved a slider, or tabbed
// to a control. Space stays the focused button's or check's own key (it
// presses it, as everywhere on a desktop); on a slider it plays.

// keyButton is a button that passes typed keys other than space to keys.
type keyButton struct {
	widget.Button
	keys func(rune)
}

func newKeyButton(label string, icon fyne.Resource, tapped func(), keys func(rune)) *keyButton {
	b := &keyButton{keys: keys}
	b.Text, b.Icon, b.OnTapped = label, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// TypedRune is called by Fyne while the button has the focus.
func (b *keyButton) TypedRune(r rune) {
	if r != ' ' {
		b.keys(r)
	}
}

// keyCheck is a check that passes typed keys other than space to keys.
type keyCheck struct {
	widget.Check
	keys func(rune)
}

func newKeyCheck(label string, changed func(bool), keys func(rune)) *keyCheck {
	c := &keyCheck{keys: keys}
	c.Text, c.OnChanged = label, changed
	c.ExtendBaseWidget(c)
	return c
}

// TypedRune is called by Fyne while the check has the focus.
func (c *keyCheck) TypedRune(r rune) {
	if r == ' ' {
		c.Check.TypedRune(r)
		return
	}
	c.keys(r)
}

// keySlider is a slider that passes every typed key to keys (it moves
// with the arrow keys, which are not typed runes).
type keySlider struct {
	widget.Slider
	keys func(rune)
}

func newKeySlider(lo, hi float64, keys func(rune)) *keySlider {
	s := &keySlider{keys: keys}
	s.Value, s.Min, s.Max, s.Step = lo, lo, hi, 1
	s.Orientation = widget.Horizontal
	s.ExtendBaseWidget(s)
	return s
}

// TypedRune is called by Fyne while the slider has the focus.
func (s *keySlider) TypedRune(r rune) { s.keys(r) }
