"""Streamlit page scripts, run by st.navigation (never imported). A package only so that they are installed with
kbqa; not named ``pages`` because Streamlit would treat a ``pages/`` folder next to its main script specially."""
