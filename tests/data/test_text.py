from mmrec.data.text import clean_text, item_text


def test_markup_entities_control_chars_and_whitespace_are_cleaned():
    raw = (
        "  <p>Caf\u00e9&nbsp;<b>au</b> &lt;i&gt;lait&lt;/i&gt;</p>\x00\x07 \t\n ok <script>alert(1)</script>"
    )
    assert clean_text(raw, 100) == "Café au lait ok"


def test_unicode_is_nfkc_normalised():
    assert clean_text("ﬁne ＡＢＣ", 100) == "fine ABC"


def test_missing_values_become_empty():
    assert clean_text(None, 10) == "" and clean_text(float("nan"), 10) == ""


def test_length_cap_prefers_word_boundary():
    assert clean_text("alpha beta gamma delta", 19) == "alpha beta gamma"
    assert clean_text("supercalifragilistic", 5) == "super"  # no boundary near: hard cut


def test_item_text_joins_title_and_description():
    assert item_text("Title", "desc") == "Title. desc"
    assert item_text("Done!", "desc") == "Done! desc"
    assert item_text("", "desc") == "desc" and item_text("", "") == ""
