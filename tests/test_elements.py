import numpy as np
import pytest

from explorer.elements import (
    ELEMENT_FEATURES,
    N_ELEMENTS,
    N_PROPERTIES,
    atomic_number,
    feature_matrix,
    property_names,
    site_features,
    symbols,
)
from explorer.errors import ExplorerInputError


def test_feature_matrix_is_one_hot_plus_finite_properties():
    features = feature_matrix()
    assert features.shape == (N_ELEMENTS, ELEMENT_FEATURES) == (103, 125)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features[:, :N_ELEMENTS], np.eye(N_ELEMENTS))
    props = features[:, N_ELEMENTS:]
    assert props.shape[1] == N_PROPERTIES == len(property_names()) == 22
    assert np.all(np.isfinite(props))
    # the table is standardised column by column
    np.testing.assert_allclose(props.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(props.std(0), 1.0, atol=1e-2)


@pytest.mark.parametrize("symbol, z", [("H", 1), ("O", 8), ("Na", 11), ("Sr", 38), ("Lr", 103)])
def test_atomic_number(symbol, z):
    assert atomic_number(symbol) == z
    assert symbols()[z - 1] == symbol


@pytest.mark.parametrize("symbol", ["Xx", "Rf", "na", "", "NaCl"])
def test_unknown_element_is_an_input_error(symbol):
    with pytest.raises(ExplorerInputError):
        atomic_number(symbol)


def test_site_features_rows_match_table():
    rows = site_features(np.array([11, 17, 17]))
    assert rows.shape == (3, ELEMENT_FEATURES)
    assert rows[0, 10] == 1 and rows[1, 16] == 1 and rows[0].sum() != rows[1].sum()
    np.testing.assert_array_equal(rows[1], rows[2])


@pytest.mark.parametrize("bad", [[0], [104], [11, -1]])
def test_site_features_rejects_out_of_range(bad):
    with pytest.raises(ExplorerInputError):
        site_features(np.array(bad))


def test_parse_chemsys():
    from explorer.elements import parse_chemsys

    assert parse_chemsys(" Ta-W-B ") == ("Ta", "W", "B")
    with pytest.raises(ExplorerInputError, match="unknown element"):
        parse_chemsys("Ta-Xx")
