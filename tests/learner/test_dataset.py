"""Reading labelled numeric CSVs: the happy paths and every rejection."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from fedd.learner.dataset import (
    Dataset,
    header_delimiter,
    header_line,
    read_dataset,
    row_format,
)
from fedd.learner.errors import DataError


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_kaggle_layout_with_quoted_header_and_label(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '"Time","V1","Amount","Class"\n0,-1.5,149.62,"0"\n1,0.25,2.69,"1"\n',
    )
    data = read_dataset(path)
    assert data.features == ("Time", "V1", "Amount")
    assert data.label == "Class"
    assert list(data.x) == [0.0, -1.5, 149.62, 1.0, 0.25, 2.69]
    assert data.y == b"\x00\x01"
    assert (data.n_rows, data.n_features, data.n_positives) == (2, 3, 1)
    assert list(data.row(1)) == [1.0, 0.25, 2.69]
    assert [list(r) for r in data.rows()] == [[0.0, -1.5, 149.62], [1.0, 0.25, 2.69]]


def test_label_anywhere_with_any_name_and_float_spellings(tmp_path: Path) -> None:
    path = write(tmp_path, "a,default,b\n1,0.0,2\n3,1.0,4\n5,1,6\n7,0,8\n")
    data = read_dataset(path, "default")
    assert data.features == ("a", "b")
    assert list(data.x) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert data.y == bytes([0, 1, 1, 0])


def test_utf8_bom_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfx,Class\r\n1,0\r\n\r\n2,1\r\n")
    data = read_dataset(path)
    assert data.features == ("x",)
    assert list(data.x) == [1.0, 2.0]


# A payment export: ids, a category and a second flag beside the numbers.
EXPORT = (
    "step,type,amount,nameOrig,isFraud,balance,isFlaggedFraud\n"
    "1,PAYMENT,9839.64,C1231006815,0,170136.0,0\n"
    "1,TRANSFER,181.0,C1305486145,1,181.0,0\n"
)


def test_ignored_columns_are_left_out_unread(tmp_path: Path) -> None:
    path = write(tmp_path, EXPORT)
    data = read_dataset(path, "isFraud", ignore=("type", "nameOrig", "isFlaggedFraud"))
    assert data.features == ("step", "amount", "balance")
    assert list(data.x) == [1.0, 9839.64, 170136.0, 1.0, 181.0, 181.0]
    assert data.y == b"\x00\x01"
    # Without them, the first text cell is the error.
    with pytest.raises(DataError, match=r"row 2, column 'type': 'PAYMENT' is not a number"):
        read_dataset(path, "isFraud")


def test_a_bad_cell_beside_ignored_columns_names_its_own_column(tmp_path: Path) -> None:
    path = write(tmp_path, EXPORT.replace("181.0,0\n", "x,0\n"))
    with pytest.raises(DataError, match=r"row 3, column 'balance': 'x' is not a number"):
        read_dataset(path, "isFraud", ignore=("type", "nameOrig"))
    path = write(tmp_path, EXPORT.replace(",1,181.0", ",2,181.0"))
    with pytest.raises(DataError, match=r"row 3, column 'isFraud'.*not '2'"):
        read_dataset(path, "isFraud", ignore=("type", "nameOrig"))


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        (("type", "nameDest"), r"no column 'nameDest' to ignore; its columns are: step, type"),
        (("isFraud",), r"the label column 'isFraud' cannot be ignored"),
        (
            ("step", "type", "amount", "nameOrig", "balance", "isFlaggedFraud"),
            r"only the label column 'isFraud'; there are no features",
        ),
    ],
)
def test_what_cannot_be_ignored(tmp_path: Path, ignore: tuple[str, ...], message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_dataset(write(tmp_path, EXPORT), "isFraud", ignore=ignore)


# As pandas' to_csv saves a table: its row index first, in a column with no name.
INDEXED = ",amount,isFraud\n0,9.5,0\n1,181.0,1\n"


def test_a_column_with_no_name_is_refused_unless_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, INDEXED)
    refusal = r"row 1, column 1: the column has no name.*--ignore-columns '\"\"'"
    with pytest.raises(DataError, match=refusal):
        read_dataset(path, "isFraud")
    data = read_dataset(path, "isFraud", ignore=("",))
    assert data.features == ("amount",)
    assert list(data.x) == [9.5, 181.0]
    # Every column with no name goes, as a trailing delimiter on each line makes one too.
    path = write(tmp_path, INDEXED.replace("\n", ",\n"))
    with pytest.raises(DataError, match=refusal):
        read_dataset(path, "isFraud")
    data = read_dataset(path, "isFraud", ignore=("",))
    assert data.features == ("amount",)
    assert list(data.x) == [9.5, 181.0]


# The credit-card file as a spreadsheet set to a German or French locale saves it.
SEMICOLONS = 'EDUCATION;MARRIAGE;"Amount, EUR";Class\n\n2;1;149.62;0\n1;2;"2.5";1\n'


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_files_read_as_the_comma_one(
    tmp_path: Path, delimiter: str
) -> None:
    text = SEMICOLONS.replace(";", delimiter)
    data = read_dataset(write(tmp_path, text))
    assert data.features == ("EDUCATION", "MARRIAGE", "Amount, EUR")
    assert list(data.x) == [2.0, 1.0, 149.62, 1.0, 2.0, 2.5]
    assert data.y == b"\x00\x01"


def test_the_header_decides_the_delimiter() -> None:
    assert header_delimiter("Time,V1,Class\n") == ","
    assert header_delimiter('a;"b,c";Class\n') == ";"
    assert header_delimiter("a,b;c\n") == ","  # a tie: fedd's own delimiter
    assert header_delimiter("Class\n") == ","


def test_a_decimal_comma_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "EDUCATION;Amount;Class\n2;149,62;0\n")
    with pytest.raises(DataError) as caught:
        read_dataset(path)
    assert str(caught.value) == (
        f"{path} row 2, column 'Amount': '149,62' is not a number "
        "(a decimal comma? fedd reads numbers with a decimal point)"
    )


@pytest.mark.parametrize(
    ("cell", "hint"),
    [
        ("", "a missing value: fill them in with --fill-missing VALUE, or leave the column out"),
        ("N/A", "a missing value"),
        ("NULL", "a missing value"),
        ("NaN", "a missing value"),
        ("1,234.56", "a formatted number? fedd reads plain ones such as -1234.5"),
        ("$12.00", "a formatted number"),
        ("(12.00)", "a formatted number"),
        ("12%", "a formatted number"),
        ("PAYMENT", "ids, names, categories and dates are no features: leave such a column out"),
        ("2019-01-01 00:00:18", "ids, names, categories and dates are no features"),
        ("13/01/2019", "ids, names, categories and dates are no features"),
    ],
)
def test_a_cell_that_is_no_number_says_what_it_looks_like(
    tmp_path: Path, cell: str, hint: str
) -> None:
    path = write(tmp_path, f'a,Amount,Class\n1,2,0\n1,"{cell}",1\n')
    with pytest.raises(DataError, match=r"row 3, column 'Amount': .*\(" + re.escape(hint)):
        read_dataset(path)


def test_missing_feature_cells_read_as_the_value_they_are_filled_in_with(tmp_path: Path) -> None:
    text = 'a,b,Class\n1,,0\n" NA ",2,1\nNULL,nan,0\n#N/A,?,1\n-,None,0\n3,4,1\n'
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=r"row 2, column 'b': empty cell \(a missing value: fill"):
        read_dataset(path)
    data = read_dataset(path, fill_missing=-1.5)
    assert list(data.x) == [1, -1.5, -1.5, 2, -1.5, -1.5, -1.5, -1.5, -1.5, -1.5, 3, 4]
    assert data.y == bytes([0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,Class\n1,\n", r"row 2, column 'Class': the label must be 0 or 1, not ''"),
        ("a,Class\n1,NA\n", r"row 2, column 'Class': the label must be 0 or 1, not 'NA'"),
        ("a,Class\n1,nan\n", r"row 2, column 'Class': the label must be 0 or 1, not 'nan'"),
        ("a,Class\nx,0\n", r"row 2, column 'a': 'x' is not a number"),
        ("a,Class\ninf,0\n", r"row 2, column 'a': 'inf' is not a finite number"),
    ],
)
def test_filling_in_leaves_labels_and_other_bad_cells_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_dataset(write(tmp_path, text), fill_missing=0.0)


@pytest.mark.parametrize("fill", [math.nan, math.inf, 2.0**62])
def test_the_fill_value_is_finite_and_small_enough_to_sum(tmp_path: Path, fill: float) -> None:
    with pytest.raises(ValueError, match="finite and below 2\\^62"):
        read_dataset(write(tmp_path, "a,Class\n1,0\n"), fill_missing=fill)


def test_boolean_words_read_as_1_and_0_in_labels_and_features(tmp_path: Path) -> None:
    # As SQL, spreadsheets and pandas export flags; the words may start any row.
    text = (
        "amount,foreign,Class\n"
        "9.5,0,0\n"
        "12.0,TRUE,true\n"
        "3.0,False,f\n"
        "4.0,1,0\n"
        "5.0, yes ,Y\n"
        "6.0,n,NO\n"
        "7.0,T,False\n"
    )
    data = read_dataset(write(tmp_path, text))
    assert list(data.x[1::2]) == [0, 1, 0, 1, 1, 0, 1]
    assert data.y == bytes([0, 1, 0, 0, 1, 0, 0])
    # After a row of words, a bad cell is still named, and missing cells still need filling.
    for bad, message in [
        ("8.0,maybe,0", r"row 9, column 'foreign': 'maybe' is not a number"),
        ("8.0,,0", r"row 9, column 'foreign': empty cell"),
    ]:
        with pytest.raises(DataError, match=message):
            read_dataset(write(tmp_path, text + bad + "\n"))
    filled = read_dataset(write(tmp_path, text + "8.0,NA,yes\n"), fill_missing=-1.0)
    assert list(filled.x[-2:]) == [8.0, -1.0] and filled.y[-1] == 1


@pytest.mark.parametrize("cell", ["1e999", "-inf"])
def test_an_infinite_value_gets_no_guess(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, f"a,Amount,Class\n1,{cell},1\n")
    with pytest.raises(DataError) as caught:
        read_dataset(path)
    assert str(caught.value) == f"{path} row 2, column 'Amount': {cell!r} is not a finite number"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("a,Class\n", "a header but no data rows"),
        ("a,b\n1,0\n", "no label column 'Class'; its columns are: a, b"),
        ("Class\n1\n", "only the label column 'Class'"),
        ("a,a,Class\n1,2,0\n", "row 1: column name 'a' appears twice"),
        ("a,Class\n1,0\n2\n", "row 3: 1 cells, but the header has 2"),
        ("a,Class\n1,0\n2,1,3\n", "row 3: 3 cells, but the header has 2"),
        ("a,b,Class\n1,2,0\n1,x,1\n", "row 3, column 'b': 'x' is not a number"),
        ("a,b,Class\n1,,0\n", "row 2, column 'b': empty cell"),
        ("a,b,Class\n1,2,0\n1,nan,1\n", "row 3, column 'b': 'nan' is not a finite number"),
        ("a,b,Class\n1,-inf,0\n", "row 2, column 'b': '-inf' is not a finite number"),
        ("a,Class\n1,2\n", "row 2, column 'Class': the label must be 0 or 1, not '2'"),
        ("a,Class\n1,0.5\n", "column 'Class': the label must be 0 or 1, not '0.5'"),
        ("a,Class\n1,maybe\n", "row 2, column 'Class': the label must be 0 or 1, not 'maybe'"),
        ("a,Class\n1,nan\n", "row 2, column 'Class': the label must be 0 or 1, not 'nan'"),
        ('a,Class\n1,"0\n', "malformed CSV"),
    ],
)
def test_bad_files_raise_one_line_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_dataset(path)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert str(path) in text_of_error
    assert "\n" not in text_of_error


def test_row_numbers_count_the_header_and_skipped_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "a,Class\n1,0\n\n2,0\nbad,1\n")
    with pytest.raises(DataError, match=r"row 5, column 'a'"):
        read_dataset(path)


def test_a_value_beyond_2_to_the_62_is_refused_naming_its_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,Class\n1,2,0\n3,-1e308,1\n")
    with pytest.raises(DataError, match=r"row 3, column 'b': '-1e308' is too large.*2\^62"):
        read_dataset(path)


def test_many_large_values_below_the_limit_are_accepted(tmp_path: Path) -> None:
    """Their norm passes 2^62, each value stays below it."""
    big = 4.0e18
    path = write(tmp_path, f"a,b,c,Class\n{big},{-big},{big},0\n")
    assert list(read_dataset(path).x) == [big, -big, big]


def test_missing_file_directory_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_dataset(tmp_path)
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"a,Class\n1,0\n\xe9\xff,1\n")
    with pytest.raises(DataError, match=r"row 3: not UTF-8 text.*--encoding"):
        read_dataset(path)
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        read_dataset(path, encoding="klingon")


def test_a_file_in_a_windows_code_page_reads_when_its_encoding_is_named(tmp_path: Path) -> None:
    # As a spreadsheet in a Western European locale saves "CSV": cp1252 and semicolons.
    path = tmp_path / "export.csv"
    text = "Händler;Betrag €;Class\nCafé Müller;12.5;0\nBäckerei;3.25;1\n"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(DataError, match=r"export\.csv row 1: not UTF-8 text"):
        read_dataset(path, ignore=("Händler",))
    data = read_dataset(path, ignore=("Händler",), encoding="cp1252")
    assert data.features == ("Betrag €",)
    assert list(data.x) == [12.5, 3.25]
    # Bytes cp1252 leaves undefined are still refused, with the row and the encoding named.
    path.write_bytes(text.encode("cp1252") + b"\x81;1.0;0\n")
    with pytest.raises(DataError, match=r"row 4: not cp1252 text; name the file's encoding"):
        read_dataset(path, ignore=("Händler",), encoding="cp1252")


@pytest.mark.parametrize("shortest", [False, True])
def test_written_lines_read_back_identically(tmp_path: Path, shortest: bool) -> None:
    values = [0.1, -1 / 3, 1e-300, 123456789.123456789, -0.0]
    path = tmp_path / "out.csv"
    fmt = row_format(len(values), shortest=shortest)
    path.write_text(
        header_line(["a,b", "c", "d", "e", "f"], "Class") + fmt % (*values, 1), encoding="utf-8"
    )
    data = read_dataset(path)
    assert data.features == ("a,b", "c", "d", "e", "f")
    assert list(data.x) == values
    assert data.y == b"\x01"


def test_dataset_checks_its_shape() -> None:
    from array import array

    with pytest.raises(ValueError, match="n_rows"):
        Dataset("m", ("a", "b"), "y", array("d", [1.0]), b"\x00")
    with pytest.raises(ValueError, match="feature"):
        Dataset("m", (), "y", array("d"), b"")


def test_reading_reports_progress_up_to_the_file_size(tmp_path: Path) -> None:
    path = write(tmp_path, "a,Class\n" + "1.5,0\n" * 10_000)
    seen: list[tuple[int, int]] = []
    read_dataset(path, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert len(seen) == 3  # every 4096 lines, then the end
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
