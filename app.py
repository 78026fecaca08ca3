"""Decision Lens in the browser: `streamlit run app.py`. Pages live in advisor/ui/pages."""

import streamlit as st

from advisor.ui import build_pages

# An emoji icon is inlined as data; a :material/ icon would make the browser fetch the favicon from a font CDN.
st.set_page_config(page_title="Decision Lens", page_icon="⚖️", layout="wide")
st.navigation(build_pages()).run()
