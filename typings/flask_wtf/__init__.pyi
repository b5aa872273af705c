# Typed stub for the parts of Flask-WTF 1.3 that WireWAN uses (the package has no type hints).
from flask_wtf.csrf import CSRFProtect as CSRFProtect
from flask_wtf.form import FlaskForm as FlaskForm
